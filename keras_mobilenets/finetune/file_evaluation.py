"""Model files evaluated side by side on a folder of labelled images.

``keras-mobilenets evaluate DATA_DIR --model FILE [FILE ...]``: top-1 and top-5 accuracy,
top-1 agreement with the first file, file size and latency of ``.keras``, ``.tflite`` and
``.onnx`` files (``export.runners.open_model``), on a folder of class sub-folders (the
layout ``finetune`` trains on, checked the same way: files that cannot be decoded are
skipped and named).

What every file is given is what ``finetune`` evaluates its own models and files with:
each image decoded with Pillow (``datasets.image_files``: EXIF orientation, RGB, 8 bits),
resized to the file's input size (bilinear, ``tf.image.resize``, as the training data) and
passed as float32 RGB pixels in [0, 255]. The classifiers of ``finetune`` rescale pixels
inside (``include_preprocessing=True``), and their TFLite files keep that: a float32 file
takes the same pixels, an int8 file takes int8 values that ``LiteRTModel.predict``
quantizes from them with the file's input scale and zero point. A ``.keras`` model that
does not start with the package's rescaling layer is refused (its input range is unknown);
a ``.tflite`` or ``.onnx`` file does not record its range, so a file made from a model
without that layer scores as if given the wrong inputs.

Labels: class ``i`` is the ``i``-th class sub-folder in sorted order, the label order
``finetune`` trains with. The files carry no class names (``finetune`` writes none), so a
file must have been trained on the same class folders.

Example:
    >>> from keras_mobilenets.finetune import file_evaluation
    >>> result = file_evaluation.evaluate_files(
    ...     "flower_photos", ["run/model.keras", "run/model_int8.tflite"], limit=20)
    >>> print(result.table())
"""

import dataclasses
import logging
import os
from typing import Optional

import numpy as np

from keras_mobilenets import _checks
from keras_mobilenets.datasets import image_files, image_folders
from keras_mobilenets.export import compare, runners
from keras_mobilenets.export.timing import Spread, time_in_rounds
from keras_mobilenets.imagenet import expected_input_range

logger = logging.getLogger(__name__)

#: Top-5 accuracy needs at least this many classes.
TOP_K = 5
#: Interleaved rounds of the latency (``export.time_in_rounds``).
LATENCY_ROUNDS = 7


@dataclasses.dataclass(frozen=True)
class FileRow:
    """One file's line of the table.

    Attributes:
        name: The file's path as given.
        input_size: ``(height, width)`` the images were resized to.
        top1: Top-1 accuracy in [0, 1].
        top5: Top-5 accuracy in [0, 1], or None with fewer than 5 classes.
        agreement: Fraction of images whose top-1 class is the first file's.
        size_kib: File size in KiB.
        latency_ms: Latency of one image (batch 1), the median over the rounds of
            ``export.time_in_rounds``.
        latency_ratio: ``export.Spread`` of this file's latency over the first file's,
            round by round (None for the first file).

    Example:
        >>> row.top1, row.latency_ms, row.latency_ratio.text()
        (0.944, 0.81, '0.52 (0.50–0.55)')
    """

    name: str
    input_size: tuple
    top1: float
    top5: Optional[float]
    agreement: float
    size_kib: float
    latency_ms: float
    latency_ratio: Optional[Spread] = None


@dataclasses.dataclass(frozen=True)
class FileEvaluation:
    """What :func:`evaluate_files` measured.

    Attributes:
        rows: A :class:`FileRow` per file, in the order given.
        class_names: The class sub-folders, in label order.
        images: Number of images evaluated.
        skipped: ``datasets.image_files.SkippedFile`` for each file left out.
        num_threads: Threads of the runtimes.

    Example:
        >>> print(result.table())
    """

    rows: tuple
    class_names: tuple
    images: int
    skipped: tuple
    num_threads: int

    def table(self):
        """The rows as a text table (see :func:`format_table`)."""
        return format_table(self.rows)


def top_k_accuracy(scores, labels, k):
    """Fraction of rows of ``scores`` ``(N, classes)`` whose ``k`` best classes hold the label.

    Example:
        >>> top_k_accuracy(np.array([[0.5, 0.3, 0.2]]), np.array([1]), 2)
        1.0
    """
    best = np.argsort(-np.asarray(scores), axis=-1, kind="stable")[:, :k]
    return float(np.mean(np.any(best == np.asarray(labels)[:, None], axis=-1)))


def format_table(rows):
    """The rows side by side, as the finetune and demo tables (``n/a``: top-5 with fewer
    than 5 classes).

    Example:
        >>> print(format_table(result.rows))
    """
    width = max([len("file")] + [len(row.name) for row in rows])
    lines = [f"{'file':{width}s} {'input':>7s} {'top-1':>7s} {'top-5':>7s} {'agreement':>10s} "
             f"{'size KiB':>9s} {'latency ms':>11s}  vs first"]
    for row in rows:
        top5 = "n/a" if row.top5 is None else f"{row.top5:.4f}"
        ratio = "-" if row.latency_ratio is None else row.latency_ratio.text()
        size = "x".join(str(side) for side in row.input_size)
        lines.append(f"{row.name:{width}s} {size:>7s} {row.top1:7.4f} {top5:>7s} "
                     f"{row.agreement:10.4f} {row.size_kib:9.1f} {row.latency_ms:11.3f}  {ratio}")
    return "\n".join(lines)


def _input_size(name, runner):
    """``(height, width)`` of a runner's RGB input; raises for other inputs."""
    shape = tuple(runner.input_shape)
    if len(shape) != 4 or shape[-1] != 3 or None in shape[1:3] or min(shape[1:3]) < 1:
        raise ValueError(f"{name!r} takes inputs of shape {shape}; evaluate runs models "
                         "taking RGB images of a fixed size, (1, height, width, 3).")
    if isinstance(runner, runners.KerasRunner) and \
            expected_input_range(runner.model) != _checks.PIXEL_RANGE:
        raise ValueError(
            f"{name!r} does not start with the package's rescaling layer "
            "(include_preprocessing=True), so its input range is unknown; evaluate gives "
            "models RGB pixels in [0, 255], as finetune's classifiers take them.")
    return int(shape[1]), int(shape[2])


def _check_outputs(name, runner, size, class_names, data_dir):
    """Raises unless one image gives one score per class (also the first, untimed call)."""
    scores = runner.predict(np.zeros((1, *size, 3), dtype="float32"))
    if isinstance(scores, list):
        raise ValueError(f"{name!r} has {len(scores)} outputs; evaluate runs classifiers "
                         "with one output of class scores.")
    if scores.ndim != 2 or scores.shape[-1] != len(class_names):
        raise ValueError(
            f"{name!r} gives {scores.shape[-1]} class scores (output shape "
            f"{tuple(scores.shape)}) but {os.fspath(data_dir)!r} has {len(class_names)} "
            f"class sub-folders ({', '.join(class_names)}).")


def _resized(images, size):
    """Decoded uint8 images resized to ``size`` (bilinear, as the training data), float32."""
    import tensorflow as tf

    return np.stack([tf.image.resize(image, size).numpy() for image in images])


def _scores(paths, models, sizes, batch_size, verbose):
    """Scores ``(N, classes)`` of every model (a list) on every image, batch by batch."""
    bar = image_files.progress_bar(len(paths), 1 if verbose == 1 else 0, "image")
    scores = [[] for _ in models]
    for start in range(0, len(paths), batch_size):
        images = [image_files.decode_for_dataset(path)
                  for path in paths[start:start + batch_size]]
        batches = {size: _resized(images, size) for size in set(sizes)}
        for parts, runner, size in zip(scores, models, sizes):
            parts.append(runner.predict(batches[size]))
        bar.add(len(images))
        if verbose == 2:
            logger.info("images %d/%d", start + len(images), len(paths))
    return [np.concatenate(parts) for parts in scores]


def evaluate_files(data_dir, files, limit=None, num_threads=2, latency_runs=50,
                   batch_size=32, verbose=0):
    """Accuracy, agreement, size and latency of model files on a folder of labelled images.

    The model files are loaded and checked first (one score per class of ``data_dir``),
    then every file of ``data_dir`` is decoded once (files that cannot be decoded are
    skipped, logged with a WARNING naming up to 20 of them, and returned), then the images
    are evaluated. Latency: one image at a time, every file timed in the same process in
    7 interleaved rounds after a warm-up (``export.time_in_rounds``); each file's latency
    ratio to the first file is read round by round.

    Args:
        data_dir: Folder of class sub-folders of images (the ``finetune`` layout).
        files: Paths of ``.keras``, ``.tflite`` and ``.onnx`` files (agreement is with the
            first one); their input sizes may differ.
        limit: Evaluate only the first ``limit`` files of each class sub-folder (in sorted
            order, the files that cannot be used among them included); None: all.
        num_threads: CPU threads of LiteRT and onnxruntime (``.keras`` models run with
            TensorFlow's own settings, ``tf.config.threading``; the command line sets them
            to the same number).
        latency_runs: Timed calls per file in each of the 7 interleaved rounds.
        batch_size: Images per prediction call.
        verbose: 0 silent; 1 Keras progress bars on a terminal; 2 a log line (INFO) per
            batch of images.

    Returns:
        A :class:`FileEvaluation`.

    Raises:
        ValueError: On a bad argument or ``data_dir`` (missing, no class sub-folders, a
            class without decodable images), a file that is not a model of its kind, a
            model whose number of class scores is not the number of classes, a model
            without a fixed RGB input, a ``.keras`` model whose input range is unknown.
        FileNotFoundError: If a model file does not exist.
        ImportError: If the runtime of a file is missing (ai-edge-litert, onnxruntime).

    Example:
        >>> result = evaluate_files("flower_photos", ["model.keras", "model_int8.tflite"])
        >>> result.rows[1].top1, result.rows[1].agreement
        (0.912, 0.987)
    """
    files = [os.fspath(path) for path in files]
    if not files:
        raise ValueError("`files` must name at least one model file, got none.")
    _checks.check_int("limit", limit, minimum=1, allow_none=True)
    _checks.check_positive_int("num_threads", num_threads)
    _checks.check_positive_int("latency_runs", latency_runs)
    _checks.check_positive_int("batch_size", batch_size)
    _checks.check_choice("verbose", verbose, (0, 1, 2))
    class_names = tuple(image_folders.check_image_folder(data_dir))
    opened = {}  # a file given twice is loaded once
    for path in files:
        if path not in opened:
            opened[path] = runners.open_model(path, num_threads=num_threads)
    models = [opened[path] for path in files]
    sizes = [_input_size(path, runner) for path, runner in zip(files, models)]
    for path, runner, size in zip(files, models, sizes):
        _check_outputs(path, runner, size, class_names, data_dir)

    scan = image_folders.scan_image_folder(data_dir, verbose=verbose, limit=limit)
    if scan.skipped:
        logger.warning("skipped %d file(s) that cannot be used as images:\n%s",
                       len(scan.skipped), image_files.format_report(scan.skipped, limit=20))
    logger.info("evaluating %d file(s) on %d images of %d classes (%s)", len(files),
                len(scan.paths), len(class_names),
                ", ".join(f"{name} {count}" for name, count in scan.counts().items()))
    scores = _scores(list(scan.paths), models, sizes, batch_size, verbose)
    logger.info("timing %d file(s): %d interleaved rounds of %d runs of one image, %d "
                "thread(s)", len(files), LATENCY_ROUNDS, latency_runs, num_threads)
    times = time_in_rounds(dict(enumerate(models)), rounds=LATENCY_ROUNDS, runs=latency_runs,
                           warmup=max(1, latency_runs // 5))
    labels = np.asarray(scan.labels)
    rows = tuple(
        FileRow(
            name=path, input_size=sizes[index],
            top1=compare.accuracy(scores[index], labels),
            top5=top_k_accuracy(scores[index], labels, TOP_K)
            if len(class_names) >= TOP_K else None,
            agreement=compare.agreement(scores[index], scores[0]),
            size_kib=os.path.getsize(path) / 1024, latency_ms=times.median_ms(index),
            latency_ratio=times.ratio(index, 0) if index else None,
        )
        for index, path in enumerate(files)
    )
    return FileEvaluation(rows, class_names, len(scan.paths), tuple(scan.skipped), num_threads)
