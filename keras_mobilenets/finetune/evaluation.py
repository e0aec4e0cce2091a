"""The comparison at the end of a run: Keras models and their TFLite or ONNX files side by
side.

Example:
    >>> from keras_mobilenets.finetune import evaluation
    >>> rows, files = evaluation.compare_models(model, x_val, y_val, qat_model=qat,
    ...                                         int8_path="model_int8.tflite")
"""

import logging
import os

import numpy as np

from keras_mobilenets import _checks
from keras_mobilenets.export import compare
from keras_mobilenets.imagenet import expected_input_range

logger = logging.getLogger(__name__)


def _export(kind, model, path, quantization=None, calibration=None):
    """Writes ``model`` to ``path`` with ``export.to_tflite`` or ``export.to_onnx``."""
    from keras_mobilenets import export as export_lib

    if kind == "ONNX":
        export_lib.to_onnx(model, path, quantization=quantization, calibration_data=calibration)
    else:
        export_lib.to_tflite(model, path, quantization=quantization,
                             representative_data=calibration)


def compare_models(model, images, labels, qat_model=None, int8_path=None, float32_path=None,
                   representative_data=None, batch_size=32, latency_runs=50, ptq_path=None):
    """Accuracy of the Keras models and, with ``int8_path``, size and latency of its files.

    Rows: "Keras float", "Keras QAT" (with ``qat_model``; agreement with the float model)
    and, with ``int8_path``, "TFLite float32" (written to ``float32_path`` when given) and
    "TFLite int8 (QAT)" (from ``qat_model``) or "TFLite int8 (post-training)" (from
    ``model`` calibrated on ``representative_data``), run with LiteRT; for an ``.onnx``
    ``int8_path`` the same rows called "ONNX ...", written with ``export.to_onnx`` and run
    with ONNX Runtime (``float32_path`` and ``ptq_path`` of the same kind). With both a
    ``qat_model`` and ``ptq_path``, a post-training int8 file is written there too, for
    comparison (its row comes last).

    Args:
        model: The float Keras model.
        images: Evaluation images (numpy, the model's input range).
        labels: Their integer labels.
        qat_model: Optional QAT model from ``quantization.quantize_model``.
        int8_path: Path of the int8 ``.tflite`` or ``.onnx`` file to write; None exports
            nothing.
        float32_path: Path of the float32 file (same kind) to write for comparison.
        representative_data: Calibration images for post-training int8.
        batch_size: Batch size of the Keras predictions.
        latency_runs: Timed invocations per file in each of the 7 rounds that
            time the files against each other (``export.time_in_rounds``); the int8 rows'
            ``latency_ratio`` is their latency over the float32 file's, round by round.
        ptq_path: Path of a post-training int8 file to write beside the QAT one.

    Returns:
        ``(rows, files)``: a list of ``export.compare.Row`` and ``{kind: path}`` of the
        files written ("tflite_float32", "tflite_int8", "tflite_int8_ptq", or
        "onnx_float32", "onnx_int8", "onnx_int8_ptq").

    Raises:
        ValueError: If ``int8_path`` is given without ``qat_model`` or
            ``representative_data``, or ``ptq_path`` without ``int8_path``, ``qat_model``
            and ``representative_data``; if ``images`` do not fit the model's input (a
            wrong shape, a non-numeric dtype, NaN or inf, values outside [0, 255] or
            scaled to [0, 1]: the message names ``images``, what it got and the input
            shape), or ``labels`` are not one class id per image; if
            ``representative_data`` does not fit (see ``export.to_tflite``).

    Example:
        >>> rows, files = compare_models(model, x_val, y_val, qat_model=qat,
        ...                              int8_path="model_int8.tflite")
        >>> print(export.compare.format_table(rows))
    """
    from keras_mobilenets.export.runners import open_model

    if int8_path is not None and qat_model is None and representative_data is None:
        raise ValueError("`int8_path` needs a `qat_model` or `representative_data` (post-"
                         "training int8 calibration).")
    if ptq_path is not None and (int8_path is None or qat_model is None
                                 or representative_data is None):
        raise ValueError("`ptq_path` needs `int8_path`, a `qat_model` and "
                         "`representative_data` (it is written beside the QAT int8 file).")
    images = _checks.check_input_batch("images", images, tuple(model.inputs[0].shape[1:]),
                                       expected_input_range(model))
    labels = np.asarray(labels)
    classes = model.outputs[0].shape[-1]
    if labels.shape != (len(images),) or labels.dtype.kind not in "ui" or (
        labels.size and (labels.min() < 0 or labels.max() >= classes)
    ):
        raise ValueError(
            f"`labels` must be {len(images)} integer class ids (one per image) in [0, "
            f"{classes}); got dtype {labels.dtype} and shape {labels.shape}."
        )
    float_probs = model.predict(images, batch_size=batch_size, verbose=0)
    rows = [compare.Row("Keras float", compare.accuracy(float_probs, labels))]
    if qat_model is not None:
        qat_probs = qat_model.predict(images, batch_size=batch_size, verbose=0)
        rows.append(compare.Row("Keras QAT", compare.accuracy(qat_probs, labels),
                                compare.agreement(qat_probs, float_probs)))
    files = {}
    if int8_path is None:
        return rows, files
    kind = compare.kind_of(int8_path)
    key = kind.lower()
    logger.info("exporting %s files and running them", kind)
    exported = []
    if float32_path is not None:
        files[f"{key}_float32"] = os.fspath(float32_path)
        _export(kind, model, files[f"{key}_float32"])
        exported.append((f"{kind} float32", files[f"{key}_float32"], float_probs))
    files[f"{key}_int8"] = os.fspath(int8_path)
    post_training = None
    if qat_model is not None:
        _export(kind, qat_model, files[f"{key}_int8"], quantization="int8")
        exported.append((f"{kind} int8 (QAT)", files[f"{key}_int8"], qat_probs))
        if ptq_path is not None:
            post_training = files[f"{key}_int8_ptq"] = os.fspath(ptq_path)
    else:
        post_training = files[f"{key}_int8"]
    if post_training is not None:
        _export(kind, model, post_training, "int8", representative_data)
        exported.append((f"{kind} int8 (post-training)", post_training, float_probs))
    for name, path, reference in exported:
        row, _ = compare.tflite_row(name, path, images, labels, reference)
        rows.append(row)
    timed = {name: open_model(path) for name, path, _ in exported}
    reference = f"{kind} float32"
    rows = compare.with_latency(rows, timed, reference=reference if reference in timed else None,
                                runs=latency_runs)
    return rows, files
