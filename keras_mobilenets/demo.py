"""The main job: train, quantization-aware fine-tune and export a model on the shapes data.

``keras-mobilenets demo`` runs :func:`run_demo`, a preset of the fine-tuning workflow
(``finetune.workflow.run_workflow``) on the embedded synthetic shapes data: a small
MobileNetV3Small classifier trained from random weights, fine-tuned quantization-aware
(tfmot through ``keras_mobilenets.quantization``), exported as float32 and int8 TFLite
files (the int8 file from the QAT model, and a post-training int8 file from the float model
for comparison), run with LiteRT on held-out images, with accuracy, agreement, size and
latency side by side. The same ``seed`` on the same machine gives the same numbers.

Example:
    >>> from keras_mobilenets.demo import run_demo
    >>> result = run_demo(train_images=6000, epochs=6)
    >>> print(result.table())
"""

import contextlib
import dataclasses
import os
import time

import keras

from keras_mobilenets import _checks, results
from keras_mobilenets.datasets import shapes
from keras_mobilenets.export import compare
from keras_mobilenets.finetune import data as data_lib
from keras_mobilenets.finetune import workflow
from keras_mobilenets.finetune.config import FineTuneConfig

# One line of the demo table (accuracies on the held-out split, in [0, 1]).
DemoRow = compare.Row

# The files of the demo: {key of DemoResult.files: (file name, workflow file key)}.
_FILES = {
    "float32": ("shapes_float32.tflite", "tflite_float32"),
    "int8_qat": ("shapes_int8_qat.tflite", "tflite_int8"),
    "int8_ptq": ("shapes_int8_ptq.tflite", "tflite_int8_ptq"),
}


@dataclasses.dataclass(frozen=True)
class DemoResult:
    """Everything the demo measured.

    Attributes:
        rows: ``export.compare.Row`` per model and file, on the held-out images.
        files: ``{"float32", "int8_qat", "int8_ptq": path}`` of the TFLite files.
        seconds: Wall-clock time of the run.
        results_file: Path of the run's ``results.json`` (the table's figures with the
            seed, the command and the machine; see ``keras_mobilenets.results``).

    Example:
        >>> result.row("TFLite int8 (QAT)").agreement
        0.99
    """

    rows: tuple
    files: dict
    seconds: float
    results_file: str = None

    def row(self, name):
        """The row called ``name``."""
        return next(row for row in self.rows if row.name == name)

    def table(self):
        """The result as a text table."""
        return compare.format_table(self.rows)


def demo_config(image_size=64, epochs=6, qat_epochs=1, batch_size=32, alpha=1.0, seed=0):
    """The :class:`~keras_mobilenets.finetune.FineTuneConfig` of the demo.

    MobileNetV3Small from random weights: no frozen phase, every layer trains (batch norms
    included, re-estimated after training) with Adam from 3e-3, then QAT from 1e-4; no
    augmentation (the shapes data is generated, not collected).

    Example:
        >>> demo_config(epochs=2).fine_tune_epochs
        2
    """
    return FineTuneConfig(
        backbone="MobileNetV3Small", backbone_kwargs={"alpha": alpha}, weights=None,
        image_size=image_size, batch_size=batch_size, validation_split=0.0, augment=False,
        dropout_rate=0.1, epochs=0, fine_tune_epochs=epochs, fine_tune_learning_rate=3e-3,
        freeze_batch_norm=False, qat=True, qat_epochs=qat_epochs, qat_learning_rate=1e-4,
        calibration_images=512, seed=seed,
    )


def run_demo(
    output_dir=os.path.join("keras_mobilenets_runs", "demo"),
    image_size=64,
    train_images=6000,
    test_images=1000,
    epochs=6,
    qat_epochs=1,
    batch_size=32,
    alpha=1.0,
    verbose=1,
    seed=0,
    command=None,
):
    """Trains, QAT fine-tunes and exports MobileNetV3Small on the shapes data.

    Args:
        output_dir: Folder for the .tflite files and the models (created).
        image_size: Square input size (>= 32).
        train_images: Training images (generated, deterministic; >= 10).
        test_images: Held-out images for every accuracy (>= 1).
        epochs: Float training epochs (>= 1).
        qat_epochs: Quantization-aware fine-tuning epochs (>= 1).
        batch_size: Batch size (>= 1).
        alpha: Width multiplier of MobileNetV3Small.
        verbose: 1 shows Keras progress bars and step messages, 2 the step messages and one
            plain line per epoch (for a file or a pipe), 0 is silent.
        seed: Seed of the data, the initialization and the training order; the same seed
            gives the same numbers on one machine.
        command: The command line to record in ``output_dir/results.json`` (None: the
            ``run_demo(...)`` call).

    Returns:
        A :class:`DemoResult`.

    Raises:
        ValueError: On invalid sizes or counts (the message names the argument).
        keras_mobilenets._checks.BackendError: (a ``RuntimeError``) on a Keras backend
            other than TensorFlow (QAT and TFLite export need it;
            ``finetune.run_finetune`` trains float models on every backend).

    Example:
        >>> result = run_demo(train_images=2000, epochs=3, seed=1)
        >>> print(result.table())
    """
    for name, value, low in (("train_images", train_images, 10), ("test_images", test_images, 1),
                             ("epochs", epochs, 1), ("qat_epochs", qat_epochs, 1),
                             ("batch_size", batch_size, 1), ("image_size", image_size, 32),
                             ("seed", seed, 0)):
        _checks.check_int(name, value, minimum=low)
    config = demo_config(image_size, epochs, qat_epochs, batch_size, alpha, seed)
    config.check()
    _checks.require_tensorflow_backend("the demo (QAT and TFLite export)")  # before any data
    start = time.perf_counter()
    output_dir = os.fspath(output_dir)
    with workflow.report_to_stdout() if verbose else contextlib.nullcontext():
        keras.utils.set_random_seed(seed)
        steps = workflow.Steps.of(config)
        steps.say("data", "data: %d training / %d held-out shapes images, %dx%d, classes %s",
                  train_images, test_images, image_size, image_size,
                  ", ".join(shapes.CLASS_NAMES))
        x_train, y_train = shapes.load("train", num_images=train_images,
                                       image_size=image_size, seed=seed)
        x_test, y_test = shapes.load("test", num_images=test_images, image_size=image_size,
                                     seed=seed)
        data = workflow.TrainingData(
            train=data_lib.arrays_dataset(x_train, y_train, batch_size, shuffle_seed=seed),
            validation=data_lib.arrays_dataset(x_test, y_test, batch_size),
            class_names=tuple(shapes.CLASS_NAMES),
        )
        os.makedirs(output_dir, exist_ok=True)
        paths = {key: os.path.join(output_dir, name) for key, (name, _) in _FILES.items()}
        result = workflow.run_workflow(
            data, output_dir, config, steps, export=paths["int8_qat"],
            float32_path=paths["float32"], ptq_path=paths["int8_ptq"], verbose=verbose,
            checkpoints=False,
        )
    files = {key: result.files[kind] for key, (_, kind) in _FILES.items()}
    seconds = time.perf_counter() - start
    settings = dict(image_size=image_size, train_images=train_images, test_images=test_images,
                    epochs=epochs, qat_epochs=qat_epochs, batch_size=batch_size, alpha=alpha)
    if command is None:
        command = "run_demo(%s)" % ", ".join(
            f"{key}={value!r}" for key, value in {**settings, "seed": seed}.items())
    path = results.write_results(output_dir, "demo", seed, command, result.rows,
                                 settings=settings, seconds=seconds)
    return DemoResult(rows=result.rows, files=files, seconds=seconds, results_file=path)

