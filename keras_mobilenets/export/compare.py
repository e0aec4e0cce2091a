"""Side-by-side comparison of Keras models and their TFLite or ONNX files: accuracy, size,
latency.

The demo (``keras-mobilenets demo``) and the fine-tuning workflow
(``keras-mobilenets finetune``) both end with such a table.

Example:
    >>> rows = [Row("Keras float", accuracy(float_probs, labels))]
    >>> row, probs = tflite_row("TFLite int8", "model_int8.tflite", images, labels,
    ...                         reference=float_probs)
    >>> print(format_table(rows + [row]))
"""

import dataclasses
import os
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of a comparison table.

    Attributes:
        name: What the line measures, e.g. ``"TFLite int8 (QAT)"``.
        accuracy: Top-1 accuracy in [0, 1].
        agreement: Top-1 agreement in [0, 1] with the model the line's model was made
            from, or None.
        size_kib: File size in KiB, or None.
        latency_ms: Median latency of one inference in milliseconds, or None.
    """

    name: str
    accuracy: float
    agreement: Optional[float] = None
    size_kib: Optional[float] = None
    latency_ms: Optional[float] = None


def accuracy(probabilities, labels):
    """Top-1 accuracy of class scores ``(N, classes)`` against integer ``labels`` ``(N,)``.

    Example:
        >>> accuracy(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]))
        0.5
    """
    return float(np.mean(np.argmax(probabilities, axis=-1) == np.asarray(labels)))


def agreement(a, b):
    """Fraction of rows whose top-1 class is the same in scores ``a`` and ``b``.

    Example:
        >>> agreement(np.array([[0.9, 0.1]]), np.array([[0.6, 0.4]]))
        1.0
    """
    return float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)))


def format_table(rows):
    """The rows as a text table (``-`` where a value is None).

    Args:
        rows: An iterable of :class:`Row`.

    Returns:
        The table, one line per row under a header.

    Example:
        >>> print(format_table([Row("Keras float", 0.9)]))
    """

    def cell(value, fmt):
        width = int(fmt.split(".")[0])
        return format(value, fmt) if value is not None else "-".rjust(width)

    lines = [f"{'model':28s} {'accuracy':>9s} {'agreement':>10s} {'size KiB':>9s} "
             f"{'latency ms':>11s}"]
    for row in rows:
        lines.append(
            f"{row.name:28s} {cell(row.accuracy, '9.4f')} {cell(row.agreement, '10.4f')} "
            f"{cell(row.size_kib, '9.1f')} {cell(row.latency_ms, '11.3f')}"
        )
    return "\n".join(lines)


#: The files a row can measure, by suffix, and what they are called.
FILE_KINDS = {".tflite": "TFLite", ".onnx": "ONNX"}


def kind_of(path):
    """"TFLite" or "ONNX" for a path ending in .tflite or .onnx.

    Raises:
        ValueError: For another path.

    Example:
        >>> kind_of("run/model_int8.onnx")
        'ONNX'
    """
    suffix = os.path.splitext(os.fspath(path))[1]
    if suffix not in FILE_KINDS:
        raise ValueError(f"Expected a path ending in {' or '.join(FILE_KINDS)}, got {path!r}.")
    return FILE_KINDS[suffix]


def runner_of(path, num_threads=2):
    """A ``LiteRTModel`` for a .tflite path, an ``OnnxModel`` for an .onnx path.

    Example:
        >>> runner_of("model_int8.onnx").predict(images)
    """
    if kind_of(path) == "ONNX":
        from keras_mobilenets.export.onnx_runtime import OnnxModel

        return OnnxModel(path, num_threads=num_threads)
    from keras_mobilenets.export.litert import LiteRTModel

    return LiteRTModel(path, num_threads=num_threads)


def tflite_row(name, path, images, labels, reference=None, latency_runs=100, num_threads=2):
    """Runs a TFLite file with LiteRT (or an ONNX file with ONNX Runtime) on ``images`` and
    measures one comparison row.

    Args:
        name: Name of the row.
        path: The ``.tflite`` (or ``.onnx``) file.
        images: Float inputs ``(N, rows, cols, channels)`` in the range the model expects.
        labels: Integer labels ``(N,)``.
        reference: Optional scores ``(N, classes)`` of the model the file was made from,
            for the agreement column.
        latency_runs: Timed invocations for the latency (after ``latency_runs // 10``
            untimed ones).
        num_threads: CPU threads of the interpreter.

    Returns:
        ``(row, probabilities)``: the :class:`Row` and the file's float32 outputs.

    Raises:
        ImportError: If ai-edge-litert (for .tflite) or onnxruntime (for .onnx) is not
            installed.

    Example:
        >>> row, probs = tflite_row("TFLite int8", "model_int8.tflite", images, labels)
        >>> row.size_kib, row.latency_ms
    """
    runner = runner_of(path, num_threads=num_threads)
    probabilities = runner.predict(images)
    latency = runner.latency(runs=latency_runs, warmup=max(1, latency_runs // 10)).median_ms
    row = Row(
        name,
        accuracy(probabilities, labels),
        agreement(probabilities, reference) if reference is not None else None,
        os.path.getsize(path) / 1024,
        latency,
    )
    return row, probabilities
