"""The settings of a fine-tuning run, and the record that ties checkpoints to them.

Example:
    >>> from keras_mobilenets.finetune import config
    >>> config.FineTuneConfig(epochs=3, qat=True).check()
"""

import dataclasses
import json
import logging
import os
from typing import Optional

import keras
import tensorflow as tf

from keras_mobilenets import _checks, registry
from keras_mobilenets.finetune.classifier import check_backbone_kwargs
from keras_mobilenets.finetune.phases import OPTIMIZERS

logger = logging.getLogger(__name__)

#: The file in ``output_dir`` that records the settings its checkpoints belong to.
SETTINGS_FILE = "settings.json"


@dataclasses.dataclass(frozen=True)
class FineTuneConfig:
    """Settings of :func:`run_finetune` (defaults: a pretrained MobileNetV3Small at 224).

    Attributes:
        backbone: A registered builder name (``registry.builder_names()``).
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
        seed: Seed of the split, shuffling, augmentation and initialization (>= 0);
            the same seed gives the same numbers on one machine.

    Example:
        >>> config = FineTuneConfig(backbone="MobileNetV2", backbone_kwargs={"alpha": 0.5},
        ...                         epochs=3, fine_tune_epochs=3, qat=True)
        >>> config.check()
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

        _checks.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _checks.check_choice("backbone", self.backbone, registry.builder_names())
        check_backbone_kwargs(self.backbone, self.backbone_kwargs)
        check_weights_argument(self.weights)
        for name, minimum in (("image_size", 32), ("batch_size", 1), ("epochs", 0),
                              ("fine_tune_epochs", 0), ("qat_epochs", 1),
                              ("calibration_images", 1), ("latency_runs", 1), ("seed", 0)):
            _checks.check_int(name, getattr(self, name), minimum=minimum)
        for name in ("learning_rate", "fine_tune_learning_rate", "qat_learning_rate"):
            _checks.check_positive_number(name, getattr(self, name))
        _checks.check_rate("validation_split", self.validation_split)
        _checks.check_rate("dropout_rate", self.dropout_rate)
        for name in ("augment", "sync_batch_norm", "qat"):
            _checks.check_bool(name, getattr(self, name))
        if self.freeze_batch_norm is not None:
            _checks.check_bool("freeze_batch_norm", self.freeze_batch_norm)

    def training_settings(self, data_dir):
        """The settings that the checkpoints depend on (QAT ones only when QAT runs)."""
        settings = dataclasses.asdict(self)
        for key in ("latency_runs", "qat"):
            settings.pop(key)
        if not self.qat:
            for key in ("qat_epochs", "qat_learning_rate"):
                settings.pop(key)
        if settings["weights"] is not None:
            settings["weights"] = os.fspath(settings["weights"])
        settings["data_dir"] = os.path.abspath(data_dir) if data_dir is not None else None
        return settings


def holds_checkpoints(output_dir):
    """Whether ``output_dir`` holds a checkpoint or a phase backup of a run.

    Example:
        >>> holds_checkpoints("keras_mobilenets_runs/finetune")
        True
    """
    for folder in ("checkpoints", "backup"):
        for _, _, files in os.walk(os.path.join(os.fspath(output_dir), folder)):
            if files:
                return True
    return False


def check_settings(output_dir, settings):
    """Records ``settings`` in ``output_dir``; refuses checkpoints of other settings.

    A folder whose ``settings.json`` differs from ``settings`` but that holds no
    checkpoint (a run that stopped before its first epoch ended, e.g. offline while
    downloading weights) is taken over: its settings are replaced.

    Raises:
        ValueError: If ``output_dir`` holds checkpoints of a run with other settings.

    Example:
        >>> check_settings("run", FineTuneConfig().training_settings("flower_photos"))
    """
    path = os.path.join(output_dir, SETTINGS_FILE)
    stored = {}
    if os.path.exists(path):
        with open(path) as f:
            stored = json.load(f)
    differing = [key for key in settings if key in stored and stored[key] != settings[key]]
    if differing:
        details = "; ".join(f"{key}: {stored[key]!r} there, {settings[key]!r} now"
                            for key in differing)
        if holds_checkpoints(output_dir):
            raise ValueError(
                f"`output_dir` {output_dir!r} holds the checkpoints of a run with other "
                f"settings ({details}); use another output_dir or delete that one."
            )
        logger.info("%s: no checkpoints of the earlier run with other settings (%s); "
                    "starting afresh", output_dir, details)
        stored = {}
    with open(path, "w") as f:
        json.dump({**stored, **settings}, f, indent=1, sort_keys=True)


def _is_default_strategy(strategy):
    """Whether ``strategy`` is None or TensorFlow's default (one device, no scope) strategy."""
    return strategy is None or (not tf.distribute.has_strategy()
                                and strategy is tf.distribute.get_strategy())


def tensorflow_only_settings(config, export=None, distributed=False):
    """The settings of a run that need Keras' TensorFlow backend and that it uses.

    The four, in message order: "qat", "export", "sync_batch_norm", "strategy".

    Args:
        config: A :class:`FineTuneConfig`.
        export: The int8 ``.tflite`` path of the run, or None.
        distributed: Whether the run uses a ``tf.distribute`` strategy other than the default.

    Returns:
        A list of those names (empty for a float run).

    Example:
        >>> tensorflow_only_settings(FineTuneConfig(qat=True), export="model.tflite")
        ['qat', 'export']
    """
    given = {"qat": config.qat, "export": export is not None,
             "sync_batch_norm": config.sync_batch_norm, "strategy": bool(distributed)}
    return [name for name, used in given.items() if used]


def check_backend(config, export=None, strategy=None):
    """Refuses the TensorFlow-only settings of a run on another Keras backend, up front.

    The float workflow (data, classifier, frozen and unfrozen phases, checkpoints and
    resume, evaluation, ``model.keras``) runs on every Keras backend; quantization-aware
    training (tfmot, tf_keras), TFLite export, synchronized batch norms and
    ``tf.distribute`` strategies other than the default need TensorFlow
    (:func:`tensorflow_only_settings`). :func:`run_finetune` and :func:`run_workflow` call
    it before anything is read or trained, so such a run fails at once rather than after
    its float phases.

    Args:
        config: A :class:`FineTuneConfig`.
        export: The int8 ``.tflite`` path of the run, or None.
        strategy: The ``tf.distribute`` strategy of the run, or None.

    Raises:
        keras_mobilenets._checks.BackendError: (a ``RuntimeError``) on a backend other than
            TensorFlow with ``config.qat``, ``export``, ``config.sync_batch_norm`` or a
            non-default ``strategy``: the message names them and says to set
            ``KERAS_BACKEND=tensorflow``.

    Example:
        >>> check_backend(FineTuneConfig(qat=True))  # with KERAS_BACKEND=jax:
        Traceback (most recent call last):
        BackendError: finetune with qat=True needs the TensorFlow backend of Keras, but Keras
        runs on 'jax'. Set the environment variable KERAS_BACKEND=tensorflow ...
    """
    if keras.backend.backend() == "tensorflow":
        return
    names = {"qat": "qat=True", "export": "export (int8 TFLite or ONNX)",
             "sync_batch_norm": "sync_batch_norm=True", "strategy": "a tf.distribute strategy"}
    used = [names[name] for name in tensorflow_only_settings(
        config, export, distributed=not _is_default_strategy(strategy))]
    require_tensorflow_for(f"finetune with {' and '.join(used)}", used)


def require_tensorflow_for(feature, used):
    """:func:`_checks.require_tensorflow_backend` for ``feature`` when ``used`` is not empty.

    The message adds that the float fine-tuning runs on every backend without ``used``.

    Args:
        feature: What needs TensorFlow, for the message.
        used: The names of the TensorFlow-only settings given (as the caller spells them).

    Raises:
        keras_mobilenets._checks.BackendError: On another backend when ``used`` is not empty.
    """
    if not used:
        return
    try:
        _checks.require_tensorflow_backend(feature)
    except _checks.BackendError as error:
        raise _checks.BackendError(f"{error} Without {' and '.join(used)} the float "
                                   "fine-tuning runs on every Keras backend.") from None
