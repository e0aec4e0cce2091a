"""The main job: train, quantization-aware fine-tune and export a model on the shapes data.

``keras-mobilenets demo`` runs :func:`run_demo`: it trains a small MobileNetV3Small on the
embedded synthetic shapes data, fine-tunes it quantization-aware (tfmot through
``keras_mobilenets.quantization``), exports float32 and int8 TFLite files (the int8 file
from the QAT model, and a post-training int8 file from the float model for comparison),
runs them with LiteRT and prints accuracy, agreement, size and latency side by side.

Example:
    >>> from keras_mobilenets.demo import run_demo
    >>> result = run_demo(train_images=6000, epochs=6)
    >>> print(result.table())
"""

import dataclasses
import os
import time

import keras
import numpy as np

from keras_mobilenets.datasets import shapes
from keras_mobilenets.export import compare
from keras_mobilenets.training import reestimate_batch_norm


# One line of the demo table (accuracies on the held-out split, in [0, 1]).
DemoRow = compare.Row


@dataclasses.dataclass(frozen=True)
class DemoResult:
    """Everything the demo measured."""

    rows: tuple
    files: dict
    seconds: float

    def row(self, name):
        """The row called ``name``."""
        return next(row for row in self.rows if row.name == name)

    def table(self):
        """The result as a text table."""
        return compare.format_table(self.rows)


def run_demo(
    output_dir="keras_mobilenets_demo",
    image_size=64,
    train_images=6000,
    test_images=1000,
    epochs=6,
    qat_epochs=1,
    batch_size=32,
    alpha=1.0,
    verbose=1,
):
    """Trains, QAT fine-tunes and exports MobileNetV3Small on the shapes data.

    Args:
        output_dir: Folder for the .tflite files (created).
        image_size: Square input size.
        train_images: Training images (generated, deterministic).
        test_images: Held-out images for every accuracy.
        epochs: Float training epochs.
        qat_epochs: Quantization-aware fine-tuning epochs.
        batch_size: Batch size.
        alpha: Width multiplier of MobileNetV3Small.
        verbose: 1 shows Keras progress bars and step messages, 0 is silent.

    Returns:
        A :class:`DemoResult`.

    Raises:
        ValueError: On invalid sizes or counts.
    """
    from keras_mobilenets import MobileNetV3Small, export
    from keras_mobilenets.quantization import quantize_model

    for name, value, low in (("train_images", train_images, 10), ("test_images", test_images, 1),
                             ("epochs", epochs, 1), ("qat_epochs", qat_epochs, 1),
                             ("batch_size", batch_size, 1), ("image_size", image_size, 32)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"`{name}` must be an int >= {low}, got {value!r}.")
    start = time.perf_counter()

    def say(message):
        if verbose:
            print(message, flush=True)

    say(f"[1/5] Generating shapes data: {train_images} train / {test_images} test images, "
        f"{image_size}x{image_size}, classes {', '.join(shapes.CLASS_NAMES)}")
    x_train, y_train = shapes.load("train", num_images=train_images, image_size=image_size)
    x_test, y_test = shapes.load("test", num_images=test_images, image_size=image_size)
    x_train, x_test = x_train.astype("float32"), x_test.astype("float32")

    say(f"[2/5] Training MobileNetV3Small (alpha {alpha}) for {epochs} epochs")
    keras.utils.set_random_seed(0)
    model = MobileNetV3Small(
        input_shape=(image_size, image_size, 3), alpha=alpha, classes=shapes.NUM_CLASSES,
        weights=None, dropout_rate=0.1,
    )
    steps = epochs * int(np.ceil(train_images / batch_size))
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, steps)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose)
    # MobileNetV3's batch norms average with momentum 0.999 (tuned for long ImageNet runs):
    # after a few hundred steps their moving statistics are still far from the data's.
    reestimate_batch_norm(model, x_train[:1024])
    float_probs = model.predict(x_test, batch_size=128, verbose=0)

    say(f"[3/5] Quantization-aware fine-tuning for {qat_epochs} epochs")
    # Ranges from 512 training images first: tfmot's initial ranges would barely move in
    # one epoch (moving average with decay 0.999).
    qat_model = quantize_model(model, calibration_data=x_train[:512])
    import tf_keras  # installed with the qat extra, which quantize_model needs

    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(1e-4),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    qat_model.fit(x_train, y_train, batch_size=batch_size, epochs=qat_epochs, verbose=verbose)
    qat_probs = qat_model.predict(x_test, batch_size=128, verbose=0)

    say("[4/5] Exporting TFLite files (float32, int8 from QAT, int8 post-training)")
    os.makedirs(output_dir, exist_ok=True)
    files = {
        "float32": os.path.join(output_dir, "shapes_float32.tflite"),
        "int8_qat": os.path.join(output_dir, "shapes_int8_qat.tflite"),
        "int8_ptq": os.path.join(output_dir, "shapes_int8_ptq.tflite"),
    }
    export.to_tflite(model, files["float32"])
    export.to_tflite(qat_model, files["int8_qat"], quantization="int8")
    export.to_tflite(model, files["int8_ptq"], quantization="int8",
                     representative_data=x_train[:256])

    say("[5/5] Running the TFLite files with LiteRT on the held-out images")
    references = {"float32": float_probs, "int8_qat": qat_probs, "int8_ptq": float_probs}
    names = {"float32": "TFLite float32", "int8_qat": "TFLite int8 (QAT)",
             "int8_ptq": "TFLite int8 (post-training)"}
    rows = [
        DemoRow("Keras float", compare.accuracy(float_probs, y_test)),
        DemoRow("Keras QAT", compare.accuracy(qat_probs, y_test),
                compare.agreement(qat_probs, float_probs)),
    ]
    for key, path in files.items():
        row, _ = compare.tflite_row(names[key], path, x_test, y_test, references[key])
        rows.append(row)
    return DemoResult(rows=tuple(rows), files=files, seconds=time.perf_counter() - start)
