"""Fine-tuning a backbone of the package on a folder of images, as reusable steps.

The workflow (``run_finetune`` runs it end to end, ``keras-mobilenets finetune`` is its
command line and ``examples/finetune_colab.ipynb`` walks through the steps one by one):

1. data: a folder with one sub-folder of images per class, read with
   ``keras.utils.image_dataset_from_directory`` (:func:`image_folder_datasets`), or the
   embedded shapes data written as such a folder (:func:`write_shapes_folder`);
2. augmentation with Keras preprocessing layers inside the ``tf.data`` pipeline
   (:func:`augmentation`, :func:`augment`), so that the model stays a plain network for
   QAT and TFLite;
3. a classifier: a backbone without its top (``weights="imagenet"``, None or a weights
   file) under a new head (:func:`build_classifier`);
4. two phases: the backbone frozen (only the head trains), then unfrozen with a lower
   learning rate (:func:`set_backbone_trainable`, :func:`fit_phase`); every epoch is
   checkpointed and an interrupted phase resumes where it stopped
   (``keras.callbacks.BackupAndRestore``);
5. optionally quantization-aware fine-tuning (``quantization.quantize_model`` with
   calibration images, then :func:`fit_phase` again);
6. optionally int8 TFLite export, run with LiteRT, and a table of accuracy, size and
   latency (``export.compare``).

Batch normalization: the batch norms of a frozen backbone run in inference mode (Keras
does that for non-trainable BatchNormalization layers), so they keep their statistics.
With pretrained weights they stay frozen when the backbone is unfrozen
(``freeze_batch_norm``), as Keras' transfer-learning guide recommends. When they train
(random initial weights), MobileNetV3's momentum of 0.999 leaves their moving statistics
far from the data after a short training, so they are re-estimated from training images
(``training.reestimate_batch_norm``) before each validation and at the end of the phase.

Every step builds and compiles inside the strategy it is given, so the workflow runs under
``tf.distribute`` strategies (see ``keras_mobilenets.distribute``); under a multi-worker
strategy the phases train tf_keras twins of the model (see :func:`fit_phase`).

Example:
    >>> from keras_mobilenets import finetune
    >>> result = finetune.run_finetune(
    ...     "flower_photos", output_dir="flowers_run",
    ...     config=finetune.FineTuneConfig(epochs=3, fine_tune_epochs=3, qat=True),
    ...     export="flowers_int8.tflite")
    >>> print(result.table())
"""

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from keras_mobilenets.backbone import BACKBONES, headless_backbone
from keras_mobilenets.datasets import shapes
from keras_mobilenets.distribute import is_multi_worker
from keras_mobilenets.export import compare
from keras_mobilenets.models import common
from keras_mobilenets.training import batch_norm_layers, reestimate_batch_norm

logger = logging.getLogger(__name__)

# The image files keras.utils.image_dataset_from_directory reads.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
PHASES = ("frozen", "fine_tune", "qat")
OPTIMIZERS = ("adam", "sgd")
_SHAPES_MARKER = ".keras_mobilenets_shapes.json"


# --------------------------------------------------------------------------------------
# Data


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")


def _count_images(folder):
    return sum(
        name.lower().endswith(IMAGE_EXTENSIONS)
        for _, _, names in os.walk(folder) for name in names
    )


def check_image_folder(data_dir):
    """Checks that ``data_dir`` is a folder of class sub-folders holding images.

    The layout ``keras.utils.image_dataset_from_directory`` reads: one sub-folder per
    class (its name is the class name), with image files (``IMAGE_EXTENSIONS``) in it or
    in folders below it. Hidden sub-folders (``.ipynb_checkpoints``) and files next to
    the class folders are ignored.

    Args:
        data_dir: Path of the folder.

    Returns:
        The class names, sorted (the label order of the datasets).

    Raises:
        ValueError: If ``data_dir`` does not exist or is not a folder, has fewer than two
            class sub-folders, or has a class sub-folder without images.

    Example:
        >>> check_image_folder("flower_photos")
        ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']
    """
    path = os.fspath(data_dir)
    if not os.path.exists(path):
        raise ValueError(f"`data_dir` {path!r} does not exist.")
    if not os.path.isdir(path):
        raise ValueError(f"`data_dir` {path!r} is not a folder.")
    cats, dogs = (os.path.join(path, name, "001.jpg") for name in ("cats", "dogs"))
    layout = f"expected one sub-folder of images per class, e.g. {cats} and {dogs}"
    classes = sorted(
        name for name in os.listdir(path)
        if not name.startswith(".") and os.path.isdir(os.path.join(path, name))
    )
    if len(classes) < 2:
        raise ValueError(
            f"`data_dir` {path!r} must hold at least 2 class sub-folders, found "
            f"{len(classes)} ({', '.join(classes) or 'none'}); {layout}."
        )
    empty = [name for name in classes if not _count_images(os.path.join(path, name))]
    if empty:
        raise ValueError(
            f"`data_dir` {path!r}: class sub-folder(s) {', '.join(map(repr, empty))} hold no "
            f"images (files ending in {', '.join(IMAGE_EXTENSIONS)}); {layout}."
        )
    return classes


def write_shapes_folder(directory, num_images=1000, image_size=64, split="train", seed=0,
                        verbose=0):
    """Writes the embedded shapes data as a folder of class sub-folders of PNG files.

    Gives the image-folder workflow data without a download:
    ``directory/circle/00000.png``, ``directory/square/00001.png``, ... (the classes of
    ``datasets.shapes.CLASS_NAMES``). A folder this function wrote with the same arguments
    is left as it is, so calling it again is cheap.

    Args:
        directory: Folder to write (created; must be empty or written by this function).
        num_images: Number of images (classes are balanced within every 5 images).
        image_size: Height and width of the images in pixels (>= 32).
        split: "train" or "test" (see ``datasets.shapes.load``).
        seed: Seed of the data.
        verbose: 1 shows a progress bar.

    Returns:
        ``directory``.

    Raises:
        ValueError: On an invalid argument, or if ``directory`` holds other files.

    Example:
        >>> folder = write_shapes_folder("shapes_images", num_images=500, image_size=96)
        >>> check_image_folder(folder)
        ['circle', 'cross', 'ring', 'square', 'triangle']
    """
    directory = os.fspath(directory)
    settings = {"num_images": num_images, "image_size": image_size, "split": split,
                "seed": seed}
    marker = os.path.join(directory, _SHAPES_MARKER)
    if os.path.isfile(marker):
        with open(marker) as f:
            if json.load(f) == settings:
                return directory
    elif os.path.isdir(directory) and os.listdir(directory):
        raise ValueError(
            f"`directory` {directory!r} is not empty and was not written by "
            "write_shapes_folder; choose an empty or new folder."
        )
    images, labels = shapes.load(split, num_images=num_images, image_size=image_size,
                                 seed=seed)
    for name in shapes.CLASS_NAMES:
        os.makedirs(os.path.join(directory, name), exist_ok=True)
    if os.path.isfile(marker):  # written before with other arguments: start afresh
        os.remove(marker)
        for name in shapes.CLASS_NAMES:
            for old in os.listdir(os.path.join(directory, name)):
                os.remove(os.path.join(directory, name, old))
    bar = keras.utils.Progbar(num_images, verbose=verbose, unit_name="image")
    for index, (image, label) in enumerate(zip(images, labels)):
        path = os.path.join(directory, shapes.CLASS_NAMES[label], f"{index:05d}.png")
        tf.io.write_file(path, tf.io.encode_png(image))
        bar.add(1)
    with open(marker, "w") as f:
        json.dump(settings, f)
    return directory


def image_folder_datasets(data_dir, image_size=224, batch_size=32, validation_split=0.2,
                          seed=0):
    """Training and validation datasets of a folder of class sub-folders.

    ``keras.utils.image_dataset_from_directory`` with ``labels="inferred"`` and integer
    labels: images are resized to ``image_size`` (bilinear), float32 in [0, 255] (the range
    the classifiers of :func:`build_classifier` take), batches shuffled with ``seed``.

    Args:
        data_dir: The folder (see :func:`check_image_folder`).
        image_size: Square size the images are resized to (>= 32).
        batch_size: Batch size (global batch size under a distribution strategy).
        validation_split: Fraction of the images held out for validation, in [0, 1);
            0 gives no validation dataset.
        seed: Seed of the split and of the shuffling.

    Returns:
        ``(train, validation, class_names)``; ``validation`` is None when
        ``validation_split`` is 0.

    Raises:
        ValueError: On a bad folder (see :func:`check_image_folder`) or argument.

    Example:
        >>> train, val, class_names = image_folder_datasets("flower_photos", image_size=224)
    """
    class_names = check_image_folder(data_dir)
    _check_int("image_size", image_size, 32)
    _check_int("batch_size", batch_size, 1)
    common.check_rate("validation_split", validation_split)
    _check_int("seed", seed, 0)
    options = dict(labels="inferred", label_mode="int", class_names=class_names,
                   image_size=(image_size, image_size), batch_size=batch_size, seed=seed,
                   shuffle=True, verbose=False)
    if validation_split:
        train, validation = keras.utils.image_dataset_from_directory(
            os.fspath(data_dir), validation_split=validation_split, subset="both", **options
        )
    else:
        train = keras.utils.image_dataset_from_directory(os.fspath(data_dir), **options)
        validation = None
    logger.info("%s: %d classes, %d training batches, %s validation batches", data_dir,
                len(class_names), int(train.cardinality()),
                int(validation.cardinality()) if validation is not None else 0)
    prefetch = lambda d: d.prefetch(tf.data.AUTOTUNE) if d is not None else None  # noqa: E731
    return prefetch(train), prefetch(validation), class_names


def augmentation(seed=0, flip=True, rotation=0.05, zoom=0.1, contrast=0.1):
    """Keras preprocessing layers for training-time augmentation of [0, 255] images.

    Args:
        seed: Seed of the random layers.
        flip: Random horizontal flips.
        rotation: Largest rotation as a fraction of a full turn (0 disables).
        zoom: Largest zoom in or out as a fraction of the size (0 disables).
        contrast: Largest contrast change as a fraction (0 disables).

    Returns:
        A ``keras.Sequential`` (call it with ``training=True``, or use :func:`augment`).

    Example:
        >>> train = augment(train, augmentation(rotation=0.1))
    """
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, seed=seed + 1))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, seed=seed + 2))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed + 3))
    return keras.Sequential(layers, name="augmentation")


def augment(dataset, layers):
    """Applies augmentation ``layers`` to the images of a dataset of ``(images, labels)``.

    Example:
        >>> train = augment(train, augmentation())
    """
    return dataset.map(lambda x, y: (layers(x, training=True), y),
                       num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def take_images(dataset, count):
    """The first ``count`` images of a dataset of ``(images, labels)`` batches, as numpy.

    Example:
        >>> calibration = take_images(train, 256)
    """
    _check_int("count", count, 1)
    parts, total = [], 0
    for images, _ in dataset:
        parts.append(np.asarray(images))
        total += len(parts[-1])
        if total >= count:
            break
    return np.concatenate(parts)[:count]


def dataset_arrays(dataset):
    """All ``(images, labels)`` of a batched dataset as two numpy arrays.

    Example:
        >>> x_val, y_val = dataset_arrays(validation)
    """
    images, labels = [], []
    for x, y in dataset:
        images.append(np.asarray(x))
        labels.append(np.asarray(y))
    return np.concatenate(images), np.concatenate(labels)


# --------------------------------------------------------------------------------------
# Model


def builder_accepts(backbone, argument):
    """Whether the builder called ``backbone`` (one of ``BACKBONES``) has ``argument``.

    Example:
        >>> builder_accepts("ShuffleNetV2", "alpha")
        False
    """
    import inspect

    import keras_mobilenets

    return argument in inspect.signature(getattr(keras_mobilenets, backbone)).parameters


def _check_backbone_kwargs(backbone, kwargs):
    if backbone not in BACKBONES:
        return  # headless_backbone names the allowed backbones
    reserved = sorted(set(kwargs) & {"input_shape", "include_top", "weights", "input_tensor"})
    if reserved:
        raise ValueError(f"`backbone_kwargs` must not set {reserved}: the classifier sets them.")
    unknown = sorted(name for name in kwargs if not builder_accepts(backbone, name))
    if unknown:
        raise ValueError(
            f"`backbone_kwargs` {sorted(kwargs)}: {backbone} has no argument(s) {unknown}."
        )


def build_classifier(num_classes, backbone="MobileNetV3Small", image_size=224,
                     weights="imagenet", dropout_rate=0.2, **backbone_kwargs):
    """A backbone without its top under a new classification head.

    ``inputs (image_size, image_size, 3) in [0, 255] -> backbone -> global average pooling
    -> dropout -> dense softmax``. The backbone is one nested layer (see
    :func:`backbone_of`), built with ``include_preprocessing=True`` so the model takes raw
    pixels whatever the family's preprocessing.

    Args:
        num_classes: Number of classes (>= 2).
        backbone: One of ``backbone.BACKBONES`` or a model built by this package with
            ``include_top=False``.
        image_size: Square input size (>= 32).
        weights: Backbone weights: ``"imagenet"``, None or a weights file (for a name).
        dropout_rate: Dropout before the dense layer, in [0, 1).
        **backbone_kwargs: More builder arguments for a name (``alpha``,
            ``minimalistic``, ``scale``, ...).

    Returns:
        A functional ``keras.Model`` named ``"<backbone>_classifier"``.

    Raises:
        ValueError: On an invalid argument (the message names it).

    Example:
        >>> model = build_classifier(5, "MobileNetV3Small", image_size=224, weights="imagenet")
        >>> model.output_shape
        (None, 5)
    """
    _check_int("num_classes", num_classes, 2)
    _check_int("image_size", image_size, 32)
    common.check_rate("dropout_rate", dropout_rate)
    input_shape = (image_size, image_size, 3)
    if isinstance(backbone, str):
        _check_backbone_kwargs(backbone, backbone_kwargs)
        backbone_kwargs = {"include_preprocessing": True, "weights": weights, **backbone_kwargs}
    base = headless_backbone(backbone, input_shape=input_shape, argument="backbone",
                             **backbone_kwargs)
    inputs = keras.Input(input_shape, name="image")
    x = base(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dropout(dropout_rate, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head_predictions")(x)
    return keras.Model(inputs, outputs, name=f"{base.name}_classifier")


def backbone_of(model):
    """The nested backbone of a model from :func:`build_classifier`.

    Raises:
        ValueError: If ``model`` has no nested model.

    Example:
        >>> backbone_of(model).name
        'MobileNetV3Small'
    """
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(
            f"`model` {model.name!r} must hold exactly one nested backbone model (as "
            f"build_classifier makes), found {len(nested)}."
        )
    return nested[0]


def set_backbone_trainable(model, trainable, freeze_batch_norm=True):
    """Freezes or unfreezes the backbone of a :func:`build_classifier` model.

    Compile the model again afterwards (:func:`fit_phase` does).

    Args:
        model: A model from :func:`build_classifier`.
        trainable: Whether the backbone's weights train.
        freeze_batch_norm: With ``trainable=True``, keep the batch norms frozen (they run
            in inference mode with their current statistics and their scale and offset
            do not change). Recommended with pretrained weights.

    Returns:
        The number of trainable weights of the model.

    Example:
        >>> set_backbone_trainable(model, False)   # phase 1: only the head trains
        2
    """
    base = backbone_of(model)
    base.trainable = bool(trainable)
    for layer in batch_norm_layers(base):  # set each: Keras skips a value set before
        layer.trainable = bool(trainable) and not freeze_batch_norm
    return len(model.trainable_weights)


# --------------------------------------------------------------------------------------
# Training


@dataclasses.dataclass(frozen=True)
class PhaseResult:
    """What one :func:`fit_phase` call did.

    Attributes:
        name: The phase's name.
        history: ``History.history`` of the epochs run in this call (metric -> values).
        epochs: The epochs run in this call, 0-based (an interrupted phase resumes at the
            epoch after its last backup, so they need not start at 0).
        completed_before: True when the phase had already finished in ``output_dir`` and
            its last checkpoint was loaded instead of training.
    """

    name: str
    history: dict
    epochs: tuple
    completed_before: bool = False


class _BatchNormReestimation(keras.callbacks.Callback):
    """Re-estimates batch-norm statistics before each validation (see the module doc)."""

    def __init__(self, images):
        super().__init__()
        self.images = images

    def on_test_begin(self, logs=None):
        reestimate_batch_norm(self.model, self.images)


def _library_of(model):
    """``keras`` for Keras 3 models, ``tf_keras`` for QAT models."""
    if isinstance(model, keras.Model):
        return keras, ".weights.h5"
    from keras_mobilenets.quantization._tf_keras import tf_keras

    return tf_keras, ".h5"


def fit_phase(model, train_data, validation_data=None, *, epochs, learning_rate,
              optimizer="adam", name="phase", output_dir=None, batch_norm_images=None,
              callbacks=(), verbose=1, strategy=None):
    """Compiles and trains a model for one phase, with a checkpoint per epoch and resume.

    The model is compiled (``optimizer`` with a cosine decay from ``learning_rate``,
    sparse categorical cross-entropy, accuracy) inside the strategy it was built under. With
    ``output_dir``, every epoch's weights go to
    ``output_dir/checkpoints/<name>/epoch_NN.weights.h5`` (``.h5`` for QAT models), and
    ``BackupAndRestore`` keeps the training state in ``output_dir/backup/<name>``: if
    training is interrupted, calling ``fit_phase`` again with the same arguments
    resumes at the epoch after the last completed one; if the phase had completed, its
    last checkpoint is loaded and nothing trains.

    Under ``MultiWorkerMirroredStrategy`` with several workers, Keras 3's ``fit`` fails
    (keras-team/keras#20585), so a Keras 3 model trains as a tf_keras twin
    (``quantization.translate.to_tf_keras``, made inside the strategy) whose weights are
    copied back after the phase. There are no per-epoch checkpoints and no resume then
    (every worker would need the chief's files on a shared file system), and
    ``callbacks`` must be tf_keras callbacks.

    Args:
        model: A Keras 3 model, or a tf_keras QAT model from ``quantize_model``.
        train_data: A dataset of ``(images, labels)`` batches.
        validation_data: An optional dataset of the same kind.
        epochs: Epochs of the phase (0 returns at once).
        learning_rate: Initial learning rate (> 0).
        optimizer: "adam" or "sgd" (SGD with momentum 0.9, cheaper to trace).
        name: Name of the phase (folder names; letters, digits, ``_`` and ``-``).
        output_dir: Folder for checkpoints and the backup; None keeps nothing.
        batch_norm_images: Training images (numpy) from which batch-norm statistics are
            re-estimated before each validation and after the phase (for a model whose
            batch norms train; Keras 3 models only).
        callbacks: More callbacks for ``fit`` (of the model's library).
        verbose: ``fit`` verbosity (1: progress bars).
        strategy: The ``tf.distribute`` strategy to train under (None: the one the model
            was built under).

    Returns:
        A :class:`PhaseResult`.

    Raises:
        ValueError: On an invalid argument.

    Example:
        >>> set_backbone_trainable(model, False)
        >>> fit_phase(model, train, val, epochs=3, learning_rate=1e-3, name="frozen",
        ...           output_dir="run")
    """
    _check_int("epochs", epochs, 0)
    common.check_positive_number("learning_rate", learning_rate)
    common.check_choice("optimizer", optimizer, OPTIMIZERS)
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"`name` must be letters, digits, '_' and '-', got {name!r}.")
    if epochs == 0:
        return PhaseResult(name, {}, ())
    library, suffix = _library_of(model)
    if batch_norm_images is not None and library is not keras:
        raise ValueError("`batch_norm_images` applies to Keras 3 models only, not to QAT "
                         "models.")
    strategy = model.distribute_strategy if strategy is None else _checked_strategy(strategy)
    if is_multi_worker(strategy):
        if output_dir is not None:
            logger.warning("phase %r: no checkpoints or resume under "
                           "MultiWorkerMirroredStrategy", name)
            output_dir = None
        if library is keras:
            return _fit_phase_as_tf_keras(
                model, train_data, validation_data, strategy, batch_norm_images,
                epochs=epochs, learning_rate=learning_rate, optimizer=optimizer, name=name,
                callbacks=callbacks, verbose=verbose)
    steps = int(train_data.cardinality())
    schedule = learning_rate
    if steps > 0:
        schedule = library.optimizers.schedules.CosineDecay(learning_rate, epochs * steps)
    with strategy.scope():
        if optimizer == "adam":
            optimizer_object = library.optimizers.Adam(schedule)
        else:
            optimizer_object = library.optimizers.SGD(schedule, momentum=0.9)
        model.compile(optimizer=optimizer_object,
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fit_callbacks = list(callbacks)
    if batch_norm_images is not None:
        fit_callbacks.append(_BatchNormReestimation(batch_norm_images))
    if output_dir is not None:
        folder = os.path.join(os.fspath(output_dir), "checkpoints", name)
        last = os.path.join(folder, f"epoch_{epochs:02d}{suffix}")
        if os.path.exists(last):
            logger.info("phase %r completed before: loading %s", name, last)
            if library is keras:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(last)
            if batch_norm_images is not None:
                reestimate_batch_norm(model, batch_norm_images)
            return PhaseResult(name, {}, (), completed_before=True)
        fit_callbacks = [
            library.callbacks.BackupAndRestore(
                os.path.join(os.fspath(output_dir), "backup", name)
            ),
            *fit_callbacks,
            library.callbacks.ModelCheckpoint(
                os.path.join(folder, "epoch_{epoch:02d}" + suffix), save_weights_only=True
            ),
        ]
    history = model.fit(train_data, validation_data=validation_data, epochs=epochs,
                        callbacks=fit_callbacks, verbose=verbose)
    if output_dir is not None:  # tf_keras' BackupAndRestore leaves its empty folder
        shutil.rmtree(os.path.join(os.fspath(output_dir), "backup", name), ignore_errors=True)
    if batch_norm_images is not None:
        reestimate_batch_norm(model, batch_norm_images)
    return PhaseResult(name, dict(history.history), tuple(history.epoch))


def _checked_strategy(strategy):
    if not isinstance(strategy, tf.distribute.Strategy):
        raise ValueError("`strategy` must be a tf.distribute.Strategy (see "
                         f"distribute.strategy_from_name), got {strategy!r}.")
    return strategy


def _fit_phase_as_tf_keras(model, train_data, validation_data, strategy, batch_norm_images,
                           **phase):
    """:func:`fit_phase` of a Keras 3 model through a tf_keras twin made in ``strategy``."""
    from keras_mobilenets.quantization import translate

    with strategy.scope():
        twin = translate.to_tf_keras(model)
    result = fit_phase(twin, train_data, validation_data, strategy=strategy, **phase)
    translate.copy_weights_from_tf_keras(twin, model)
    if batch_norm_images is not None:
        reestimate_batch_norm(model, batch_norm_images)
    return result


# --------------------------------------------------------------------------------------
# The whole workflow


@dataclasses.dataclass(frozen=True)
class FineTuneConfig:
    """Settings of :func:`run_finetune` (defaults: a pretrained MobileNetV3Small at 224).

    Attributes:
        backbone: One of ``backbone.BACKBONES``.
        backbone_kwargs: More builder arguments, e.g. ``{"alpha": 0.75}`` or
            ``{"minimalistic": True}``.
        weights: Backbone weights: ``"imagenet"``, None (random) or a weights file.
        image_size: Square input size (>= 32).
        batch_size: Global batch size (>= 1).
        validation_split: Fraction of the images held out, in [0, 1).
        augment: Random flips, rotations, zooms and contrast changes while training.
        dropout_rate: Dropout of the head, in [0, 1).
        optimizer: "adam" or "sgd" (with momentum 0.9) for every phase.
        epochs: Epochs with the backbone frozen (>= 0).
        learning_rate: Initial learning rate of those epochs.
        fine_tune_epochs: Epochs with the backbone unfrozen (>= 0).
        fine_tune_learning_rate: Initial learning rate of those (lower).
        freeze_batch_norm: Keep the backbone's batch norms frozen when it is unfrozen;
            None: when ``weights`` is not None.
        sync_batch_norm: Synchronize batch statistics over the replicas of a strategy
            (``distribute.synchronize_batch_norm``).
        qat: Fine-tune quantization-aware after the float phases.
        qat_epochs: QAT epochs (>= 1).
        qat_learning_rate: Initial learning rate of QAT.
        calibration_images: Training images for QAT calibration, batch-norm statistics
            and post-training int8 export (>= 1).
        latency_runs: Timed LiteRT invocations per TFLite file (>= 1).
        seed: Seed of the split, shuffling, augmentation and initialization (>= 0).
    """

    backbone: str = "MobileNetV3Small"
    backbone_kwargs: dict = dataclasses.field(default_factory=dict)
    weights: Optional[str] = "imagenet"
    image_size: int = 224
    batch_size: int = 32
    validation_split: float = 0.2
    augment: bool = True
    dropout_rate: float = 0.2
    optimizer: str = "adam"
    epochs: int = 5
    learning_rate: float = 1e-3
    fine_tune_epochs: int = 5
    fine_tune_learning_rate: float = 1e-4
    freeze_batch_norm: Optional[bool] = None
    sync_batch_norm: bool = False
    qat: bool = False
    qat_epochs: int = 1
    qat_learning_rate: float = 1e-5
    calibration_images: int = 256
    latency_runs: int = 50
    seed: int = 0

    def check(self):
        """Raises ``ValueError`` naming the first invalid setting.

        Example:
            >>> FineTuneConfig(epochs=-1).check()
            Traceback (most recent call last):
            ValueError: `epochs` must be an int >= 0, got -1.
        """
        from keras_mobilenets.weights import check_weights_argument

        common.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        common.check_choice("backbone", self.backbone, BACKBONES)
        if not isinstance(self.backbone_kwargs, dict):
            raise ValueError(
                f"`backbone_kwargs` must be a dict, got {type(self.backbone_kwargs).__name__}."
            )
        _check_backbone_kwargs(self.backbone, self.backbone_kwargs)
        check_weights_argument(self.weights)
        for name, minimum in (("image_size", 32), ("batch_size", 1), ("epochs", 0),
                              ("fine_tune_epochs", 0), ("qat_epochs", 1),
                              ("calibration_images", 1), ("latency_runs", 1), ("seed", 0)):
            _check_int(name, getattr(self, name), minimum)
        for name in ("learning_rate", "fine_tune_learning_rate", "qat_learning_rate"):
            common.check_positive_number(name, getattr(self, name))
        common.check_rate("validation_split", self.validation_split)
        common.check_rate("dropout_rate", self.dropout_rate)
        for name in ("augment", "sync_batch_norm", "qat"):
            common.check_bool(name, getattr(self, name))
        if self.freeze_batch_norm is not None and not isinstance(self.freeze_batch_norm, bool):
            raise ValueError(
                f"`freeze_batch_norm` must be None, True or False, got {self.freeze_batch_norm!r}."
            )


@dataclasses.dataclass(frozen=True)
class FineTuneResult:
    """What :func:`run_finetune` trained and measured.

    Attributes:
        model: The fine-tuned Keras model.
        qat_model: The QAT model (tf_keras), or None without QAT.
        class_names: Class names, in label order.
        phases: ``{phase name: PhaseResult}`` for "frozen", "fine_tune" (and "qat").
        rows: ``export.compare.Row`` per model and file, measured on the validation
            images (on the training images when there is no validation split).
        files: ``{what: path}`` of the files written (model, QAT model, TFLite files).
        seconds: Wall-clock time of the run.
    """

    model: object
    qat_model: object
    class_names: tuple
    phases: dict
    rows: tuple
    files: dict
    seconds: float

    def table(self):
        """The comparison table as text."""
        return compare.format_table(self.rows)

    def row(self, name):
        """The row called ``name``."""
        return next(row for row in self.rows if row.name == name)


def _check_settings(output_dir, settings):
    """Refuses to resume in ``output_dir`` a run whose settings differ from ``settings``."""
    path = os.path.join(output_dir, "settings.json")
    stored = {}
    if os.path.exists(path):
        with open(path) as f:
            stored = json.load(f)
    differing = [key for key in settings if key in stored and stored[key] != settings[key]]
    if differing:
        details = "; ".join(f"{key}: {stored[key]!r} there, {settings[key]!r} now"
                            for key in differing)
        raise ValueError(
            f"`output_dir` {output_dir!r} holds the checkpoints of a run with other settings "
            f"({details}); use another output_dir or delete that one."
        )
    with open(path, "w") as f:
        json.dump({**stored, **settings}, f, indent=1, sort_keys=True)


def _training_settings(config, data_dir):
    """The settings that the checkpoints depend on (QAT ones only when QAT runs)."""
    settings = dataclasses.asdict(config)
    for key in ("latency_runs", "qat"):
        settings.pop(key)
    if not config.qat:
        for key in ("qat_epochs", "qat_learning_rate"):
            settings.pop(key)
    if settings["weights"] is not None:
        settings["weights"] = os.fspath(settings["weights"])
    settings["data_dir"] = os.path.abspath(data_dir)
    return settings


def compare_models(model, images, labels, qat_model=None, int8_path=None, float32_path=None,
                   representative_data=None, batch_size=32, latency_runs=50):
    """Accuracy of the Keras models and, with ``int8_path``, size and latency of TFLite files.

    Rows: "Keras float", "Keras QAT" (with ``qat_model``; agreement with the float model)
    and, with ``int8_path``, "TFLite float32" (written to ``float32_path`` when given) and
    "TFLite int8 (QAT)" (from ``qat_model``) or "TFLite int8 (post-training)" (from
    ``model`` calibrated on ``representative_data``), run with LiteRT.

    Args:
        model: The float Keras model.
        images: Evaluation images (numpy, the model's input range).
        labels: Their integer labels.
        qat_model: Optional QAT model from ``quantization.quantize_model``.
        int8_path: Path of the int8 ``.tflite`` file to write; None exports nothing.
        float32_path: Path of the float32 ``.tflite`` file to write for comparison.
        representative_data: Calibration images for post-training int8 (without QAT).
        batch_size: Batch size of the Keras predictions.
        latency_runs: Timed LiteRT invocations per file.

    Returns:
        ``(rows, files)``: a list of ``export.compare.Row`` and ``{kind: path}`` of the
        files written ("tflite_float32", "tflite_int8").

    Raises:
        ValueError: If ``int8_path`` is given without ``qat_model`` or
            ``representative_data``.

    Example:
        >>> rows, files = compare_models(model, x_val, y_val, qat_model=qat,
        ...                              int8_path="model_int8.tflite")
        >>> print(export.compare.format_table(rows))
    """
    from keras_mobilenets import export as export_lib

    if int8_path is not None and qat_model is None and representative_data is None:
        raise ValueError("`int8_path` needs a `qat_model` or `representative_data` (post-"
                         "training int8 calibration).")
    float_probs = model.predict(images, batch_size=batch_size, verbose=0)
    rows = [compare.Row("Keras float", compare.accuracy(float_probs, labels))]
    if qat_model is not None:
        qat_probs = qat_model.predict(images, batch_size=batch_size, verbose=0)
        rows.append(compare.Row("Keras QAT", compare.accuracy(qat_probs, labels),
                                compare.agreement(qat_probs, float_probs)))
    files = {}
    if int8_path is None:
        return rows, files
    logger.info("exporting TFLite files and running them with LiteRT")
    tflite = []
    if float32_path is not None:
        files["tflite_float32"] = os.fspath(float32_path)
        export_lib.to_tflite(model, files["tflite_float32"])
        tflite.append(("TFLite float32", files["tflite_float32"], float_probs))
    files["tflite_int8"] = os.fspath(int8_path)
    if qat_model is not None:
        export_lib.to_tflite(qat_model, files["tflite_int8"], quantization="int8")
        tflite.append(("TFLite int8 (QAT)", files["tflite_int8"], qat_probs))
    else:
        export_lib.to_tflite(model, files["tflite_int8"], quantization="int8",
                             representative_data=representative_data)
        tflite.append(("TFLite int8 (post-training)", files["tflite_int8"], float_probs))
    for name, path, reference in tflite:
        row, _ = compare.tflite_row(name, path, images, labels, reference,
                                    latency_runs=latency_runs)
        rows.append(row)
    return rows, files


def run_finetune(data_dir=None, output_dir="finetune_output", config=None, export=None,
                 strategy=None, shapes_images=1000, callbacks=(), verbose=1):
    """Fine-tunes a backbone on a folder of images; optionally QAT and int8 export.

    Steps (see the module docstring): data and augmentation, classifier, frozen-backbone
    epochs, unfrozen epochs, optional QAT, optional int8 TFLite export run with LiteRT,
    comparison table. Everything goes to ``output_dir``: ``settings.json``,
    ``checkpoints/<phase>/epoch_NN.*`` (one per epoch), ``backup/<phase>`` (while a
    phase runs), ``model.keras``, ``qat_model.h5`` and ``model_float32.tflite``. Calling
    it again with the same arguments after an interruption resumes: completed phases are
    loaded from their last checkpoint, the interrupted one continues at its next epoch.

    Args:
        data_dir: Folder of class sub-folders of images; None writes the embedded shapes
            data to ``output_dir/shapes_images`` and uses it.
        output_dir: Folder of the run (created).
        config: A :class:`FineTuneConfig` (defaults when None).
        export: Path of the int8 ``.tflite`` file to write (from the QAT model with
            ``config.qat``, else post-training int8); None exports nothing.
        strategy: A ``tf.distribute`` strategy to build and train under (None: the
            current one). Under ``MultiWorkerMirroredStrategy`` with several workers, give
            every worker its own ``output_dir``; the phases train tf_keras twins of the
            model and keep no checkpoints (see :func:`fit_phase`).
        shapes_images: Number of shapes images when ``data_dir`` is None.
        callbacks: More Keras callbacks for the float phases' ``fit`` (tf_keras callbacks
            under a multi-worker strategy).
        verbose: 1 shows Keras progress bars, 0 is silent (steps are logged with
            ``logging`` at INFO level).

    Returns:
        A :class:`FineTuneResult`.

    Raises:
        ValueError: On an invalid argument, a bad ``data_dir``, or an ``output_dir``
            holding a run with other settings.

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
    if export is not None and not os.fspath(export).endswith(".tflite"):
        raise ValueError(f"`export` must be a path ending in .tflite, got {export!r}.")
    _check_int("shapes_images", shapes_images, 10)
    if data_dir is not None:
        check_image_folder(data_dir)
    strategy = tf.distribute.get_strategy() if strategy is None else _checked_strategy(strategy)
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    if data_dir is None:
        logger.info("[1/6] data: writing %d shapes images (%dx%d) to %s", shapes_images,
                    config.image_size, config.image_size,
                    os.path.join(output_dir, "shapes_images"))
        data_dir = write_shapes_folder(
            os.path.join(output_dir, "shapes_images"), num_images=shapes_images,
            image_size=config.image_size, seed=config.seed, verbose=verbose,
        )
    check_image_folder(data_dir)
    settings = _training_settings(config, data_dir)
    if data_dir == os.path.join(output_dir, "shapes_images"):
        settings["shapes_images"] = shapes_images
    _check_settings(output_dir, settings)
    logger.info("[1/6] data: reading %s", data_dir)
    train, validation, class_names = image_folder_datasets(
        data_dir, config.image_size, config.batch_size, config.validation_split, config.seed
    )
    sample = take_images(train, config.calibration_images)
    train_fit = augment(train, augmentation(config.seed)) if config.augment else train

    logger.info("[2/6] building %s (weights=%s) with a %d-class head", config.backbone,
                config.weights, len(class_names))
    keras.utils.set_random_seed(config.seed)
    # Keras 3 cannot fit under a multi-worker strategy: there the model is built outside
    # it and each phase trains a tf_keras twin made inside it (see fit_phase).
    with contextlib.nullcontext() if is_multi_worker(strategy) else strategy.scope():
        model = build_classifier(len(class_names), config.backbone, config.image_size,
                                 config.weights, config.dropout_rate, **config.backbone_kwargs)
        if config.sync_batch_norm:
            from keras_mobilenets.distribute import synchronize_batch_norm

            model = synchronize_batch_norm(model)
    pretrained = config.weights is not None
    freeze_bn = pretrained if config.freeze_batch_norm is None else config.freeze_batch_norm
    if not pretrained:  # random kernels: give the frozen backbone realistic activations
        reestimate_batch_norm(model, sample)
    phases = {}
    common = dict(output_dir=output_dir, optimizer=config.optimizer, verbose=verbose,
                  strategy=strategy)

    logger.info("[3/6] %d epochs with the backbone frozen", config.epochs)
    set_backbone_trainable(model, False)
    phases["frozen"] = fit_phase(model, train_fit, validation, epochs=config.epochs,
                                 learning_rate=config.learning_rate, name="frozen",
                                 callbacks=callbacks, **common)
    logger.info("[4/6] %d epochs with the backbone unfrozen (batch norms %s)",
                config.fine_tune_epochs, "frozen" if freeze_bn else "training")
    set_backbone_trainable(model, True, freeze_batch_norm=freeze_bn)
    phases["fine_tune"] = fit_phase(
        model, train_fit, validation, epochs=config.fine_tune_epochs,
        learning_rate=config.fine_tune_learning_rate, name="fine_tune",
        batch_norm_images=None if freeze_bn else sample, callbacks=callbacks, **common,
    )
    files = {"model": os.path.join(output_dir, "model.keras")}
    model.save(files["model"])

    qat_model = None
    if config.qat:
        from keras_mobilenets.quantization import quantize_model, save_qat_model

        logger.info("[5/6] %d epochs of quantization-aware training", config.qat_epochs)
        with strategy.scope():
            qat_model = quantize_model(model, calibration_data=sample)
        phases["qat"] = fit_phase(qat_model, train_fit, validation, epochs=config.qat_epochs,
                                  learning_rate=config.qat_learning_rate, name="qat", **common)
        files["qat_model"] = os.path.join(output_dir, "qat_model.h5")
        save_qat_model(qat_model, files["qat_model"])

    logger.info("[6/6] evaluating on the %s images",
                "validation" if validation is not None else "training")
    images, labels = dataset_arrays(validation if validation is not None else train)
    rows, exported = compare_models(
        model, images, labels, qat_model=qat_model, int8_path=export,
        float32_path=os.path.join(output_dir, "model_float32.tflite"),
        representative_data=sample, batch_size=config.batch_size,
        latency_runs=config.latency_runs,
    )
    return FineTuneResult(
        model=model, qat_model=qat_model, class_names=tuple(class_names), phases=phases,
        rows=tuple(rows), files={**files, **exported}, seconds=time.perf_counter() - start,
    )
