"""The whole fine-tuning workflow, end to end: one pipeline for ``finetune`` and ``demo``.

``data -> classifier -> frozen backbone -> unfrozen backbone (batch norms) -> QAT -> int8
TFLite export -> comparison``. :func:`run_finetune` runs it on a folder of images (checked
file by file first) or on the shapes data written as such a folder; ``demo.run_demo`` is a
preset of it on the embedded shapes data in memory (:func:`run_workflow`).

Steps are reported with ``logging`` (INFO) as ``[step/steps] ...`` lines; the command line
shows them (:func:`report_to_stdout`).

Example:
    >>> from keras_mobilenets.finetune import workflow
    >>> result = workflow.run_finetune("flower_photos", "flowers_run",
    ...                                workflow.FineTuneConfig(qat=True),
    ...                                export="flowers_int8.tflite")
    >>> print(result.table())
"""

import contextlib
import dataclasses
import logging
import os
import sys
import time
from typing import Optional

import keras
import tensorflow as tf

from keras_mobilenets import _checks
from keras_mobilenets.datasets import image_files, image_folders
from keras_mobilenets.distribute import is_multi_worker
from keras_mobilenets.export import compare
from keras_mobilenets.finetune import config as config_lib
from keras_mobilenets.finetune import data as data_lib
from keras_mobilenets.finetune.classifier import build_classifier, set_backbone_trainable
from keras_mobilenets.finetune.config import FineTuneConfig, check_backend
from keras_mobilenets.finetune.evaluation import compare_models
from keras_mobilenets.finetune.phases import checked_strategy, fit_phase
from keras_mobilenets.training import reestimate_batch_norm

logger = logging.getLogger(__name__)

_LOGGER_NAME = "keras_mobilenets.finetune"  # the parent of every step message


@dataclasses.dataclass(frozen=True)
class FineTuneResult:
    """What :func:`run_finetune` trained and measured.

    Attributes:
        model: The fine-tuned Keras model.
        qat_model: The QAT model (tf_keras), or None without QAT.
        class_names: Class names, in label order.
        phases: ``{phase name: PhaseResult}`` for the phases that were asked for
            ("frozen", "fine_tune", "qat").
        rows: ``export.compare.Row`` per model and file, measured on the validation
            images (on the training images when there is no validation split).
        files: ``{what: path}`` of the files written (model, QAT model, TFLite files,
            the report of skipped image files).
        seconds: Wall-clock time of the run.
        skipped: ``datasets.image_files.SkippedFile`` for each file of ``data_dir`` left
            out (it cannot be decoded, or is no image).

    Example:
        >>> result.row("TFLite int8 (QAT)").accuracy
        0.9425
    """

    model: object
    qat_model: object
    class_names: tuple
    phases: dict
    rows: tuple
    files: dict
    seconds: float
    skipped: tuple = ()

    def table(self):
        """The comparison table as text."""
        return compare.format_table(self.rows)

    def row(self, name):
        """The row called ``name``."""
        return next(row for row in self.rows if row.name == name)


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """The datasets a run trains and evaluates on.

    Attributes:
        train: Batches of ``(float32 images in [0, 255], int labels)`` to train on.
        validation: Batches of the same kind to validate on, or None.
        class_names: Class names in label order.
        skipped: Files of the source left out (``image_files.SkippedFile``).

    Example:
        >>> data = TrainingData(train, val, ("cat", "dog"))
    """

    train: object
    validation: Optional[object]
    class_names: tuple
    skipped: tuple = ()


def _epochs(count):
    return f"{count} epoch" if count == 1 else f"{count} epochs"


class Steps:
    """Numbers the step messages of a run, ``[3/6] ...``, over the steps that run.

    Example:
        >>> steps = Steps(["data", "build", "evaluate"])
        >>> steps.say("build", "building %s", "MobileNetV3Small")   # logs [2/3] building ...
    """

    def __init__(self, names):
        self.names = list(names)

    @classmethod
    def of(cls, config):
        """The steps a run with ``config`` takes (phases without epochs are left out)."""
        names = ["data", "build"]
        names += ["frozen"] if config.epochs else []
        names += ["fine_tune"] if config.fine_tune_epochs else []
        names += ["qat"] if config.qat else []
        return cls(names + ["evaluate"])

    def say(self, name, message, *args, level=logging.INFO):
        """Logs ``message % args`` as step ``name``."""
        number = self.names.index(name) + 1
        logger.log(level, f"[{number}/{len(self.names)}] {message}", *args)


@contextlib.contextmanager
def report_to_stdout():
    """Shows the workflow's step messages on standard output while the block runs.

    Example:
        >>> with report_to_stdout():
        ...     result = run_finetune("flower_photos")
    """
    parent = logging.getLogger(_LOGGER_NAME)
    if any(getattr(handler, "keras_mobilenets_stdout", False) for handler in parent.handlers):
        yield  # shown already (the command line around a library call)
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.keras_mobilenets_stdout = True
    level, propagate = parent.level, parent.propagate
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    parent.propagate = False  # printed here, not again by a root handler
    try:
        yield
    finally:
        parent.removeHandler(handler)
        parent.setLevel(level)
        parent.propagate = propagate


def _folder_data(data_dir, output_dir, config, steps, strict, verbose):
    """Checks every file of ``data_dir``, reports the skipped ones, makes the datasets."""
    steps.say("data", "data: checking the files of %s", data_dir)
    scan = image_folders.scan_image_folder(data_dir, verbose=verbose)
    report = image_files.write_report(scan.skipped, output_dir)
    if scan.skipped:
        if strict:
            raise ValueError(image_folders.refusal(scan, report["txt"]))
        steps.say("data", "data: skipped %d file(s) that cannot be used as images (list in "
                  "%s):\n%s", len(scan.skipped), report["txt"],
                  image_files.format_report(scan.skipped, limit=20), level=logging.WARNING)
    train, validation, class_names = image_folders.image_folder_datasets(
        data_dir, config.image_size, config.batch_size, config.validation_split,
        config.seed, scan=scan,
    )
    counts = ", ".join(f"{name} {count}" for name, count in scan.counts().items())
    steps.say("data", "data: %d images of %d classes (%s), %d%% held out for validation",
              len(scan.paths), len(class_names), counts, round(100 * config.validation_split))
    return TrainingData(train, validation, tuple(class_names), scan.skipped), report


def run_workflow(data, output_dir, config, steps, *, export=None, float32_path=None,
                 ptq_path=None, strategy=None, callbacks=(), verbose=1, checkpoints=True):
    """Runs the steps after the data: classifier, phases, QAT, export and comparison.

    :func:`run_finetune` and ``demo.run_demo`` call it with their data; it is public for
    presets of the workflow on other data.

    Args:
        data: A :class:`TrainingData`.
        output_dir: Folder of the run (exists).
        config: A checked :class:`FineTuneConfig`.
        steps: The :class:`Steps` of the run (the data step done).
        export: Path of the int8 ``.tflite`` or ``.onnx`` file, or None.
        float32_path: Path of the float32 file (same kind) written with ``export``.
        ptq_path: Path of a post-training int8 file written beside a QAT one.
        strategy: A ``tf.distribute`` strategy (None: the current one).
        callbacks: More Keras callbacks for the float phases.
        verbose: 1 shows Keras progress bars, 2 one plain line per epoch.
        checkpoints: Keep a checkpoint per epoch and resume from them.

    Returns:
        A :class:`FineTuneResult`.

    Raises:
        ValueError: If the images of ``data.train`` or ``data.validation`` do not fit the
            classifier: (image_size, image_size, 3) RGB pixels in [0, 255] (the message
            names the dataset, what it got and the expected shape).
        RuntimeError: On a Keras backend other than TensorFlow with QAT, ``export``,
            ``sync_batch_norm`` or a non-default ``strategy`` (:func:`check_backend`).

    Example:
        >>> result = run_workflow(data, "run", config, Steps.of(config))
    """
    check_backend(config, export, strategy)
    start = time.perf_counter()
    strategy = tf.distribute.get_strategy() if strategy is None else strategy
    weights = config.weights
    steps.say("build", "building %s (weights=%s) with a %d-class head", config.backbone,
              weights, len(data.class_names))
    sample = data_lib.take_images(data.train, config.calibration_images)
    # The classifier takes [0, 255] pixels of the configured size (include_preprocessing):
    # refuse other data before anything trains.
    expected = (config.image_size, config.image_size, 3)
    _checks.check_input_batch("data.train", sample, expected, _checks.PIXEL_RANGE)
    if data.validation is not None:
        _checks.check_input_batch("data.validation", data_lib.take_images(data.validation, 16),
                                  expected, _checks.PIXEL_RANGE)
    train = data.train
    if config.augment:
        train = data_lib.augment(train, data_lib.augmentation(config.seed))
    # Keras 3 cannot fit under a multi-worker strategy: there the model is built outside
    # it and each phase trains a tf_keras twin made inside it (see fit_phase).
    with contextlib.nullcontext() if is_multi_worker(strategy) else strategy.scope():
        model = build_classifier(len(data.class_names), config.backbone, config.image_size,
                                 weights, config.dropout_rate, **config.backbone_kwargs)
        if config.sync_batch_norm:
            from keras_mobilenets.distribute import synchronize_batch_norm

            synchronized = synchronize_batch_norm(model)
            model = synchronized if isinstance(synchronized, keras.Model) else model
    pretrained = weights is not None
    freeze_bn = pretrained if config.freeze_batch_norm is None else config.freeze_batch_norm
    if not pretrained:  # random kernels: give the frozen backbone realistic activations
        reestimate_batch_norm(model, sample)
    phases = {}
    common = dict(output_dir=output_dir if checkpoints else None, optimizer=config.optimizer,
                  verbose=verbose, strategy=strategy)

    set_backbone_trainable(model, False)
    if config.epochs:
        steps.say("frozen", "%s with the backbone frozen", _epochs(config.epochs))
    phases["frozen"] = fit_phase(model, train, data.validation, epochs=config.epochs,
                                 learning_rate=config.learning_rate, name="frozen",
                                 callbacks=callbacks, **common)
    set_backbone_trainable(model, True, freeze_batch_norm=freeze_bn)
    if config.fine_tune_epochs:
        steps.say("fine_tune", "%s with the backbone unfrozen (batch norms %s)",
                  _epochs(config.fine_tune_epochs), "frozen" if freeze_bn else "training")
    phases["fine_tune"] = fit_phase(
        model, train, data.validation, epochs=config.fine_tune_epochs,
        learning_rate=config.fine_tune_learning_rate, name="fine_tune",
        batch_norm_images=None if freeze_bn else sample, callbacks=callbacks, **common,
    )
    files = {"model": os.path.join(output_dir, "model.keras")}
    model.save(files["model"])

    qat_model = None
    if config.qat:
        from keras_mobilenets.quantization import quantize_model, save_qat_model

        steps.say("qat", "%s of quantization-aware training", _epochs(config.qat_epochs))
        with strategy.scope():
            qat_model = quantize_model(model, calibration_data=sample)
        phases["qat"] = fit_phase(qat_model, train, data.validation, epochs=config.qat_epochs,
                                  learning_rate=config.qat_learning_rate, name="qat", **common)
        files["qat_model"] = os.path.join(output_dir, "qat_model.h5")
        save_qat_model(qat_model, files["qat_model"])

    split = "validation" if data.validation is not None else "training"
    steps.say("evaluate", "evaluating on the %s images%s", split,
              f" and exporting {compare.kind_of(export)} files" if export is not None else "")
    images, labels = data_lib.dataset_arrays(
        data.validation if data.validation is not None else data.train)
    rows, exported = compare_models(
        model, images, labels, qat_model=qat_model, int8_path=export,
        float32_path=float32_path, representative_data=sample, batch_size=config.batch_size,
        latency_runs=config.latency_runs, ptq_path=ptq_path,
    )
    return FineTuneResult(
        model=model, qat_model=qat_model, class_names=tuple(data.class_names), phases=phases,
        rows=tuple(rows), files={**files, **exported}, seconds=time.perf_counter() - start,
        skipped=tuple(data.skipped),
    )


def resolve_export(export, output_dir):
    """The int8 file path: ``export`` itself if absolute, else inside ``output_dir``.

    Raises:
        ValueError: If ``export`` is not a path ending in ``.tflite`` or ``.onnx``.

    Example:
        >>> resolve_export("model_int8.tflite", "run")
        'run/model_int8.tflite'
    """
    if export is None:
        return None
    if not isinstance(export, (str, os.PathLike)) or not os.fspath(export).endswith(
            tuple(compare.FILE_KINDS)):
        raise ValueError(
            f"`export` must be a path ending in {' or '.join(compare.FILE_KINDS)}, got "
            f"{export!r}.")
    return os.path.join(os.fspath(output_dir), os.fspath(export))


DEFAULT_OUTPUT_DIR = os.path.join("keras_mobilenets_runs", "finetune")


def run_finetune(data_dir=None, output_dir=DEFAULT_OUTPUT_DIR, config=None, export=None,
                 strategy=None, shapes_images=1000, callbacks=(), verbose=1, strict=False):
    """Fine-tunes a backbone on a folder of images; optionally QAT and int8 export.

    Steps (see the package docstring): data (every file checked and decoded once; files
    that cannot be used are skipped and listed in ``skipped_files.txt`` /
    ``skipped_files.json``), classifier, frozen-backbone epochs, unfrozen epochs,
    optional QAT, optional int8 TFLite export run with LiteRT, comparison table.
    Everything goes to ``output_dir``: ``settings.json``, ``checkpoints/<phase>/epoch_NN.*``
    (one per epoch), ``backup/<phase>`` (while a phase runs), ``model.keras``,
    ``qat_model.h5`` and ``model_float32.tflite``. Calling it again with the same
    arguments after an interruption resumes: completed phases are loaded from their last
    checkpoint, the interrupted one continues at its next epoch. The same ``config.seed``
    on the same machine gives the same numbers.

    Args:
        data_dir: Folder of class sub-folders of images; None writes the embedded shapes
            data to ``output_dir/shapes_images`` and uses it.
        output_dir: Folder of the run (created).
        config: A :class:`FineTuneConfig` (defaults when None).
        export: Path of the int8 ``.tflite`` (run with LiteRT) or ``.onnx`` (run with ONNX
            Runtime) file to write (from the QAT model with ``config.qat``, else
            post-training int8), beside a float32 ``model_float32.tflite`` or ``.onnx``;
            relative to ``output_dir`` unless absolute; None exports nothing.
        strategy: A ``tf.distribute`` strategy to build and train under (None: the
            current one). Under ``MultiWorkerMirroredStrategy`` with several workers, give
            every worker its own ``output_dir``; the phases train tf_keras twins of the
            model and keep no checkpoints (see ``fit_phase``).
        shapes_images: Number of shapes images when ``data_dir`` is None.
        callbacks: More Keras callbacks for the float phases' ``fit`` (tf_keras callbacks
            under a multi-worker strategy).
        verbose: 1 shows Keras progress bars (and the file check's on a terminal), 2 one
            plain line per epoch (for a file or a pipe), 0 is silent (steps are logged with
            ``logging`` at INFO level).
        strict: Stop before training if a file of ``data_dir`` cannot be used as an
            image, instead of skipping it.

    Returns:
        A :class:`FineTuneResult`.

    Raises:
        ValueError: On an invalid argument, a bad ``data_dir`` (with ``strict``: a file
            that cannot be decoded), a split without validation images, or an
            ``output_dir`` holding checkpoints of a run with other settings.
        RuntimeError: On a Keras backend other than TensorFlow with ``config.qat``,
            ``export``, ``config.sync_batch_norm`` or a non-default ``strategy``, before
            anything is read or trained (:func:`check_backend`; the float workflow runs on
            JAX and PyTorch too).

    Example:
        >>> result = run_finetune("flower_photos", "flowers_run",
        ...                       FineTuneConfig(qat=True), export="flowers_int8.tflite")
        >>> print(result.table())
    """
    start = time.perf_counter()
    config = FineTuneConfig() if config is None else config
    if not isinstance(config, FineTuneConfig):
        raise ValueError(f"`config` must be a FineTuneConfig, got {type(config).__name__}.")
    config.check()
    check_backend(config, export, strategy)
    output_dir = os.fspath(output_dir)
    export = resolve_export(export, output_dir)
    _checks.check_int("shapes_images", shapes_images, minimum=10)
    _checks.check_bool("strict", strict)
    if data_dir is not None:
        image_folders.check_image_folder(data_dir)
    strategy = tf.distribute.get_strategy() if strategy is None else checked_strategy(strategy)
    os.makedirs(output_dir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    steps = Steps.of(config)
    shapes_dir = os.path.join(output_dir, "shapes_images")
    if data_dir is None:
        steps.say("data", "data: writing %d shapes images (%dx%d) to %s", shapes_images,
                  config.image_size, config.image_size, shapes_dir)
        data_dir = image_folders.write_shapes_folder(
            shapes_dir, num_images=shapes_images, image_size=config.image_size,
            seed=config.seed, verbose=verbose,
        )
    settings = config.training_settings(data_dir)
    if os.path.abspath(data_dir) == os.path.abspath(shapes_dir):
        settings["shapes_images"] = shapes_images
    config_lib.check_settings(output_dir, settings)
    data, report = _folder_data(data_dir, output_dir, config, steps, strict, verbose)
    result = run_workflow(
        data, output_dir, config, steps, export=export,
        float32_path=None if export is None else os.path.join(
            output_dir, "model_float32" + os.path.splitext(export)[1]),
        strategy=strategy,
        callbacks=callbacks, verbose=verbose,
    )
    files = {**result.files, **{f"skipped_{kind}": path for kind, path in report.items()}}
    return dataclasses.replace(result, files=files, seconds=time.perf_counter() - start)

