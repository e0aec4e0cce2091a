"""One training phase: compile, fit with a checkpoint per epoch, resume after an interruption.

Under ``tf.distribute`` strategies the model is compiled inside the strategy it was built
under; under a multi-worker strategy a Keras 3 model trains as a tf_keras twin (see
:func:`fit_phase`). tf_keras models (QAT models) show the same Keras progress bars as
Keras 3 models.

Example:
    >>> from keras_mobilenets.finetune import phases
    >>> phases.fit_phase(model, train, val, epochs=3, learning_rate=1e-3, name="frozen",
    ...                  output_dir="run")
"""

import dataclasses
import logging
import os
import shutil

import keras
import tensorflow as tf

from keras_mobilenets import _checks
from keras_mobilenets.distribute import is_multi_worker
from keras_mobilenets.training import reestimate_batch_norm

logger = logging.getLogger(__name__)

PHASES = ("frozen", "fine_tune", "qat")
OPTIMIZERS = ("adam", "sgd")


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

    Example:
        >>> result = fit_phase(model, train, epochs=2, learning_rate=1e-3)
        >>> result.epochs, len(result.history["loss"])
        ((0, 1), 2)
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
        verbose: ``fit`` verbosity (1: progress bars, 2: one plain line per epoch).
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
    _checks.check_int("epochs", epochs, minimum=0)
    _checks.check_positive_number("learning_rate", learning_rate)
    _checks.check_choice("optimizer", optimizer, OPTIMIZERS)
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"`name` must be letters, digits, '_' and '-', got {name!r}.")
    if epochs == 0:
        return PhaseResult(name, {}, ())
    library, suffix = _library_of(model)
    if batch_norm_images is not None and library is not keras:
        raise ValueError("`batch_norm_images` applies to Keras 3 models only, not to QAT "
                         "models.")
    if strategy is None:  # Keras 3 models have no distribute_strategy off TensorFlow
        strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    else:
        strategy = checked_strategy(strategy)
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
    if library is keras:
        # Keras 3 keeps the epoch a BackupAndRestore restored on the model, and every later
        # fit of it starts there: the phase after a resumed one would skip its epochs.
        model._initial_epoch = None
    if library is not keras and verbose:  # one progress-bar style: Keras 3's
        fit_callbacks.append(_keras_progress(library, verbose))
        verbose = 0
    history = model.fit(train_data, validation_data=validation_data, epochs=epochs,
                        callbacks=fit_callbacks, verbose=verbose,
                        shuffle=False)  # the datasets shuffle themselves (seeded)
    if output_dir is not None:  # tf_keras' BackupAndRestore leaves its empty folder
        shutil.rmtree(os.path.join(os.fspath(output_dir), "backup", name), ignore_errors=True)
    if batch_norm_images is not None:
        reestimate_batch_norm(model, batch_norm_images)
    return PhaseResult(name, dict(history.history), tuple(history.epoch))


def checked_strategy(strategy):
    """``strategy`` if it is a ``tf.distribute.Strategy``, else ``ValueError``.

    Example:
        >>> checked_strategy(tf.distribute.get_strategy())
        <tensorflow.python.distribute.distribute_lib._DefaultDistributionStrategy ...>
    """
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


def _keras_progress(library, verbose):
    """A callback of ``library`` that shows Keras 3's progress bars (for tf_keras fits)."""

    class KerasProgress(library.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.logger = keras.callbacks.ProgbarLogger()

        def set_params(self, params):
            super().set_params(params)
            self.logger.set_params({**params, "verbose": verbose})

        def on_train_begin(self, logs=None):
            self.logger.on_train_begin(logs)

        def on_epoch_begin(self, epoch, logs=None):
            self.logger.on_epoch_begin(epoch, logs)

        def on_train_batch_end(self, batch, logs=None):
            self.logger.on_train_batch_end(batch, logs)

        def on_epoch_end(self, epoch, logs=None):
            self.logger.on_epoch_end(epoch, logs)

    return KerasProgress()
