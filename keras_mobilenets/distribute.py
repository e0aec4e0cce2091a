"""Training on several devices with TensorFlow's own ``tf.distribute`` strategies.

The package has no training engine of its own: its models are plain Keras models, so
``model.fit`` runs under any ``tf.distribute`` strategy when the model is built and
compiled inside ``strategy.scope()`` (Keras then splits every global batch between the
replicas and all-reduces the gradients). This module only picks a strategy by name and
offers synchronized batch normalization for small per-replica batches.

QAT models from ``quantization.quantize_model`` (tf_keras) train under a strategy too when
``quantize_model`` and ``compile`` run inside the same scope (checked with
``MirroredStrategy``; not checked on TPUs).

Example:
    >>> strategy = strategy_from_name("mirrored")
    >>> with strategy.scope():
    ...     model = keras_mobilenets.MobileNetV3Small(input_shape=(224, 224, 3), classes=5)
    ...     model.compile("adam", "sparse_categorical_crossentropy")
    >>> model.fit(dataset, epochs=3)  # dataset batches are global batches
"""

import logging
import os

import keras
import tensorflow as tf

from keras_mobilenets import _checks

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "tpu", "multiworker")


def _connect_tpu(tpu):
    """A ``TPUStrategy`` on the TPU ``tpu`` names ('' or None: Colab's / the local one)."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(
            f"`strategy='tpu'`: no TPU found ({error}). In Colab choose a TPU runtime "
            "(Runtime > Change runtime type); on a Cloud TPU VM pass tpu='local'."
        ) from error
    return tf.distribute.TPUStrategy(resolver)


def _tpu_visible():
    return bool(os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME")
                or tf.config.list_logical_devices("TPU"))


def strategy_from_name(name="auto", devices=None, tpu=None):
    """Returns the ``tf.distribute`` strategy called ``name``.

    Args:
        name: One of :data:`STRATEGIES`:

            * ``"auto"``: a TPU when one is attached (Colab TPU runtime, ``TPU_NAME``),
              else ``MirroredStrategy`` when there are several GPUs, else the default
              (single-device) strategy;
            * ``"default"``: ``tf.distribute.get_strategy()``, one device;
            * ``"mirrored"``: ``MirroredStrategy`` over ``devices`` (all GPUs by default,
              or the CPU when there is none);
            * ``"tpu"``: ``TPUStrategy`` (connects to and initializes the TPU system);
            * ``"multiworker"``: ``MultiWorkerMirroredStrategy``, configured by the
              ``TF_CONFIG`` environment variable of each worker. Create it at the start
              of the program, before any other TensorFlow operation.
        devices: Device names for ``"mirrored"`` (e.g. ``["/gpu:0", "/gpu:1"]``).
        tpu: TPU address or name for ``"tpu"`` (None finds Colab's; ``"local"`` on a
            Cloud TPU VM).

    Returns:
        A ``tf.distribute.Strategy``.

    Raises:
        ValueError: On an unknown name, ``devices`` with another strategy than
            ``"mirrored"``, or ``"tpu"`` without a reachable TPU.
        RuntimeError: With another Keras backend than TensorFlow.

    Example:
        >>> strategy = strategy_from_name("mirrored", devices=["/cpu:0"])
        >>> strategy.num_replicas_in_sync
        1
    """
    _checks.require_tensorflow_backend("distribute.strategy_from_name")
    _checks.check_choice("strategy", name, STRATEGIES)
    if devices is not None and name != "mirrored":
        raise ValueError(
            f"`devices` only applies to strategy='mirrored', got devices={devices!r} with "
            f"strategy={name!r}."
        )
    if name == "auto":
        if _tpu_visible():
            name = "tpu"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
        logger.info("strategy 'auto' chose %r", name)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "tpu":
        return _connect_tpu(tpu)
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_multi_worker(strategy):
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` with several workers.

    Keras 3's ``fit`` fails under such a strategy (keras-team/keras#20585: it reduces
    per-replica values in ways the multi-worker strategy does not support), so
    ``finetune.fit_phase`` trains Keras 3 models as tf_keras twins there. With one worker
    (no ``TF_CONFIG``) the strategy is an ordinary single-machine strategy.

    Example:
        >>> is_multi_worker(tf.distribute.get_strategy())
        False
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(cluster.get(job, ())) for job in ("chief", "worker")) > 1


def synchronize_batch_norm(model, names=None):
    """A copy of ``model`` whose BatchNormalization layers use statistics of the global batch.

    Under a strategy each replica normally normalizes with the statistics of its own part
    of the batch, which are noisy when that part is small (e.g. 8 TPU cores sharing a batch
    of 64). Synchronized batch normalization all-reduces the statistics over the replicas
    in every training step, so training matches one device with the whole batch. It costs
    one all-reduce per layer and step; it changes nothing in inference or on one device.

    The layers are created with the option rather than changed after being built: the
    copy is rebuilt from ``model``'s config with ``synchronized=True`` in the chosen batch
    norms' configs (nested models included), and ``model``'s weights are copied into it;
    ``model`` itself is not changed. QAT models (tf_keras, from
    ``quantization.quantize_model``) are rebuilt the same way, their chosen batch norms
    created with ``synchronized=True, fused=False`` (tf_keras' fused kernel cannot
    synchronize). ``quantize_model`` keeps the synchronized batch norms of the model it
    quantizes; a QAT model loaded from a file needs this call again. Call it inside the
    strategy's scope and before ``compile`` (the copy is not compiled). TensorFlow
    backend only.

    Args:
        model: A Keras 3 functional model or a tf_keras QAT model.
        names: Names of the BatchNormalization layers to synchronize (None: all).

    Returns:
        The new model, with the same weights.

    Raises:
        ValueError: If ``model`` is neither a Keras 3 nor a QAT model, or a name in
            ``names`` is no BatchNormalization layer of ``model``.
        RuntimeError: With another Keras backend than TensorFlow.

    Example:
        >>> with strategy.scope():
        ...     model = keras_mobilenets.MobileNetV2(input_shape=(96, 96, 3), classes=5)
        ...     model = synchronize_batch_norm(model)
        ...     model.compile("adam", "sparse_categorical_crossentropy")
    """
    _checks.require_tensorflow_backend("distribute.synchronize_batch_norm")
    norms = _batch_norms(model)
    if names is not None:
        if isinstance(names, str) or not all(isinstance(name, str) for name in names):
            raise ValueError(
                f"`names` must be None or a list of layer names, got {names!r}."
            )
        names = set(names)
        unknown = names - {layer.name for layer in norms}
        if unknown:
            raise ValueError(f"`names` has no BatchNormalization layer of {model.name!r}: "
                             f"{sorted(unknown)}.")
    else:
        names = {layer.name for layer in norms}
    if isinstance(model, keras.Model):
        return _synchronized_keras3(model, names)
    from keras_mobilenets.quantization.batch_norm import synchronized_qat_copy

    return synchronized_qat_copy(model, names)


def _synchronized_keras3(model, names):
    """Rebuilds a Keras 3 functional model with ``synchronized=True`` in chosen batch norms."""
    config = model.get_config()
    if "layers" not in config:
        raise ValueError(
            f"synchronize_batch_norm needs a functional model; {model.name!r} is a "
            f"{type(model).__name__}."
        )

    def mark(layers):
        for entry in layers:
            inner = entry.get("config", {})
            if entry["class_name"] == "BatchNormalization" and entry["name"] in names:
                inner["synchronized"] = True
            if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
                mark(inner["layers"])

    mark(config["layers"])
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def _batch_norms(model):
    """BatchNormalization layers of a Keras 3 model or of a tf_keras (QAT) model."""
    from keras_mobilenets.training import batch_norm_layers

    if isinstance(model, keras.Model):
        return batch_norm_layers(model)
    from keras_mobilenets.quantization.batch_norm import qat_batch_norms

    return qat_batch_norms(model)
