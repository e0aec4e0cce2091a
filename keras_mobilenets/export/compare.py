"""Side-by-side comparison of Keras models and their TFLite or ONNX files: accuracy, size,
latency.

The demo (``keras-mobilenets demo``) and the fine-tuning workflow
(``keras-mobilenets finetune``) both end with such a table.

Example:
    >>> rows = [Row("Keras float", accuracy(float_probs, labels))]
    >>> row, probs = tflite_row("TFLite int8", "model_int8.tflite", images, labels,
    ...                         reference=float_probs)
    >>> rows = with_latency(rows + [row], {"TFLite int8": "model_int8.tflite"})
    >>> print(format_table(rows))
"""

import dataclasses
import os
from typing import Optional

import numpy as np

from keras_mobilenets.export.timing import Spread, time_in_rounds


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of a comparison table.

    Attributes:
        name: What the line measures, e.g. ``"TFLite int8 (QAT)"``.
        accuracy: Top-1 accuracy in [0, 1].
        agreement: Top-1 agreement in [0, 1] with the model the line's model was made
            from, or None.
        size_kib: File size in KiB, or None.
        latency_ms: Latency of one inference in milliseconds (median over the rounds of
            ``export.time_in_rounds``), or None.
        latency_ratio: ``export.Spread`` of this file's latency over the reference file's
            (the float32 file), round by round, or None.
    """

    name: str
    accuracy: float
    agreement: Optional[float] = None
    size_kib: Optional[float] = None
    latency_ms: Optional[float] = None
    latency_ratio: Optional[Spread] = None


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


def format_table(rows, ratio_header="vs float32"):
    """The rows as a text table (``-`` where a value is None).

    Args:
        rows: An iterable of :class:`Row`.
        ratio_header: Header of the latency-ratio column (shown when a row has a ratio).

    Returns:
        The table, one line per row under a header.

    Example:
        >>> print(format_table([Row("Keras float", 0.9)]))
    """
    rows = list(rows)
    ratios = any(row.latency_ratio is not None for row in rows)

    def cell(value, fmt):
        width = int(fmt.split(".")[0])
        return format(value, fmt) if value is not None else "-".rjust(width)

    header = (f"{'model':28s} {'accuracy':>9s} {'agreement':>10s} {'size KiB':>9s} "
              f"{'latency ms':>11s}")
    lines = [header + (f"  {ratio_header}" if ratios else "")]
    for row in rows:
        line = (f"{row.name:28s} {cell(row.accuracy, '9.4f')} {cell(row.agreement, '10.4f')} "
                f"{cell(row.size_kib, '9.1f')} {cell(row.latency_ms, '11.3f')}")
        if row.latency_ratio is not None:
            line += f"  {Spread(*row.latency_ratio).text()}"
        lines.append(line)
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


def tflite_row(name, path, images, labels, reference=None, num_threads=2):
    """Runs a TFLite file with LiteRT (or an ONNX file with ONNX Runtime, picked by
    ``runners.open_model``) on ``images``: one comparison row without latency.

    Args:
        name: Name of the row.
        path: The ``.tflite`` file.
        images: Float inputs ``(N, rows, cols, channels)`` in the range the model expects.
        labels: Integer labels ``(N,)``.
        reference: Optional scores ``(N, classes)`` of the model the file was made from,
            for the agreement column.
        num_threads: CPU threads of the interpreter.

    Returns:
        ``(row, probabilities)``: the :class:`Row` (latency None: time the files together
        with :func:`with_latency`) and the file's float32 outputs.

    Raises:
        ImportError: If ai-edge-litert (for .tflite) or onnxruntime (for .onnx) is not
            installed.

    Example:
        >>> row, probs = tflite_row("TFLite int8", "model_int8.tflite", images, labels)
        >>> row.accuracy, row.size_kib
    """
    from keras_mobilenets.export.runners import open_model

    probabilities = open_model(path, num_threads=num_threads).predict(images)
    row = Row(
        name,
        accuracy(probabilities, labels),
        agreement(probabilities, reference) if reference is not None else None,
        os.path.getsize(path) / 1024,
    )
    return row, probabilities


def with_latency(rows, files, reference=None, num_threads=2, rounds=7, runs=50):
    """The rows with the latency of their files, timed together (``export.time_in_rounds``).

    Args:
        rows: :class:`Row` objects.
        files: ``{row name: file or runner}`` to time (see ``export.time_in_rounds``);
            other rows are returned unchanged.
        reference: Name of the row whose file the others' latency ratio is taken against
            (e.g. ``"TFLite float32"``), or None for no ratio.
        num_threads: CPU threads of the TFLite interpreters.
        rounds: Interleaved rounds.
        runs: Timed invocations per file and round.

    Returns:
        A list of :class:`Row`: ``latency_ms`` the median over the rounds,
        ``latency_ratio`` the spread of the per-round ratio to ``reference``.

    Raises:
        ValueError: If ``reference`` is not one of ``files`` (named).

    Example:
        >>> rows = with_latency(rows, {"TFLite float32": f32, "TFLite int8": i8},
        ...                     reference="TFLite float32")
        >>> rows[-1].latency_ratio.text()
        '0.93 (0.91–0.95)'
    """
    if reference is not None and reference not in files:
        raise ValueError(f"`reference` must name one of the timed files {sorted(files)}, "
                         f"got {reference!r}.")
    times = time_in_rounds(files, num_threads=num_threads, rounds=rounds, runs=runs,
                           warmup=max(1, runs // 5))
    timed = []
    for row in rows:
        if row.name in files:
            ratio = (times.ratio(row.name, reference)
                     if reference is not None and row.name != reference else None)
            row = dataclasses.replace(row, latency_ms=times.median_ms(row.name),
                                      latency_ratio=ratio)
        timed.append(row)
    return timed
