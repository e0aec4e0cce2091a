"""The models, data and training ways of the training matrix (``tests/test_training_matrix.py``
and ``tests/quantization/test_training_matrix.py``): every family, small sizes."""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from keras_mobilenets import detection, models, quantization, segmentation
from keras_mobilenets.training import reestimate_batch_norm
from tests.helpers import random_images

SIZE, HEAD_SIZE, CLASSES, BATCH = 32, 64, 4, 4
#: Images the QAT models' batch-norm statistics and quantizer ranges are estimated on.
CALIBRATION_IMAGES = 32
WAYS = ("fit", "jit_compile_false", "jit_compile_true", "gradient_tape", "mirrored")
_TOP = {"classes": CLASSES, "classifier_activation": None}
_IMAGE = (SIZE, SIZE, 3)
CLASSIFIERS = {
    "mobilenet_v1": lambda: models.MobileNet(_IMAGE, alpha=0.25, **_TOP),
    "mobilenet_v2": lambda: models.MobileNetV2(_IMAGE, alpha=0.35, **_TOP),
    "mobilenet_v3_small": lambda: models.MobileNetV3Small(_IMAGE, alpha=0.75, **_TOP),
    "mobilenet_v3_large": lambda: models.MobileNetV3Large(_IMAGE, alpha=0.75, **_TOP),
    "shufflenet_g1": lambda: models.ShuffleNet(_IMAGE, groups=1, scale=0.25, **_TOP),
    "shufflenet_g3": lambda: models.ShuffleNet(_IMAGE, groups=3, scale=0.25, **_TOP),
    "shufflenet_g8": lambda: models.ShuffleNet(_IMAGE, groups=8, scale=0.25, **_TOP),
    "shufflenet_v2": lambda: models.ShuffleNetV2(_IMAGE, scale=0.5, **_TOP),
    "mobilenet_v4_conv": lambda: models.MobileNetV4ConvSmall(_IMAGE, **_TOP),
    "mobilenet_v4_hybrid": lambda: models.MobileNetV4HybridMedium(_IMAGE, **_TOP),
}
HEADS = {
    "ssdlite": lambda: detection.SSDLite(
        "MobileNetV3Small", num_classes=3, input_shape=(HEAD_SIZE, HEAD_SIZE, 3),
        backbone_kwargs={"alpha": 0.75}, extra_channels=(32, 16, 16, 8)),
    "lraspp": lambda: segmentation.LRASPP(
        "MobileNetV3Small", num_classes=CLASSES, input_shape=(HEAD_SIZE, HEAD_SIZE, 3),
        inter_channels=16, alpha=0.75),
}
def _data(name, model):
    """``(images, targets, loss)`` of one small batch for family ``name``."""
    rng = np.random.default_rng(0)
    size = HEAD_SIZE if name in HEADS else SIZE
    images = rng.uniform(0.0, 255.0, (BATCH, size, size, 3)).astype("float32")
    if name == "ssdlite":
        encoder = detection.TargetEncoder(detection.DefaultBoxes.from_model(model),
                                          (HEAD_SIZE, HEAD_SIZE))
        boxes = np.array([[[4, 4, 30, 30], [20, 30, 60, 60]]] * BATCH, "float32")
        labels = np.array([[0, 2]] * BATCH, "int32")
        targets = encoder.encode({"boxes": boxes, "labels": labels})
        return images, {k: np.asarray(v) for k, v in targets.items()}, detection.ssd_losses()
    if name == "lraspp":
        masks = rng.integers(0, CLASSES, (BATCH, HEAD_SIZE, HEAD_SIZE)).astype("int32")
        return images, masks, segmentation.SegmentationCrossEntropy(ignore_label=255)
    labels = rng.integers(0, CLASSES, BATCH).astype("int32")
    return images, labels, keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _total_loss(loss, targets, outputs):
    if isinstance(loss, dict):
        return tf.add_n([loss[key](targets[key], outputs[key]) for key in loss])
    return loss(targets, outputs)


_BUILT = {}


def _build(name, qat):
    """The float model of family ``name``, or its QAT model, calibrated as after training.

    A fresh model's batch-norm statistics (mean 0, variance 1) shrink its inference
    outputs to ~1e-10, so calibrated ranges would be ~0 and its QAT outputs exactly 0:
    they are re-estimated on ``CALIBRATION_IMAGES`` images first (at 32x32 the last
    stages' statistics need more than one batch of ``BATCH``). A fresh MobileNetV4
    hybrid stays degenerate in QAT at this size (its layer scales, timm's initial 1e-5,
    also after blocks without a shortcut, shrink the signal below int8 steps; re-estimated,
    its attention overflows at 32x32), so the hybrid's QAT cells train the package's
    hybrid blocks (Mobile MQA, GELU UIB with layer scale 0.5) in the small model of the
    MobileNetV4 QAT tests.
    """
    if qat and name == "mobilenet_v4_hybrid":
        from tests.quantization.test_mobilenet_v4_qat import _tiny_hybrid

        model = _tiny_hybrid()
        return quantization.quantize_model(model, calibration_data=_data(name, model)[0])
    model = {**CLASSIFIERS, **HEADS}[name]()
    if not qat:
        return model
    images = random_images((SIZE, SIZE, 3), batch=CALIBRATION_IMAGES, seed=1)
    reestimate_batch_norm(model, images, batch_size=CALIBRATION_IMAGES)
    return quantization.quantize_model(model, calibration_data=images)


def _training_parts(qat):
    """``(optimizer builder, loss or None)``: tf_keras' for the QAT (tf_keras) models."""
    if not qat:
        return (lambda: keras.optimizers.SGD(0.01)), None
    import tf_keras

    return ((lambda: tf_keras.optimizers.SGD(0.01)),
            tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def take_step(way, name, qat=False):
    """Trains the float or QAT model of family ``name`` one step ``way``.

    Outside a strategy the ways of one family share one model (built once per process:
    each step starts from the weights the last one left); ``"mirrored"`` builds its own in
    the strategy's scope.

    Returns:
        ``(model, images, loss value, trainable weights before the step)``.
    """
    optimizer, loss = _training_parts(qat)
    strategy = tf.distribute.MirroredStrategy() if way == "mirrored" else None
    with strategy.scope() if strategy else contextlib.nullcontext():
        if strategy:
            model = _build(name, qat)
        else:
            if (name, qat) not in _BUILT:
                _BUILT[(name, qat)] = _build(name, qat)
            model = _BUILT[(name, qat)]
        images, targets, family_loss = _data(name, model)
        loss = loss or family_loss
        before = [np.array(w) for w in model.trainable_weights]
        if way == "gradient_tape":
            opt = optimizer()

            @tf.function
            def step(x, y):
                with tf.GradientTape() as tape:
                    value = _total_loss(loss, y, model(x, training=True))
                variables = model.trainable_weights
                opt.apply_gradients(zip(tape.gradient(value, variables), variables))
                return value

            return model, images, float(step(images, targets)), before
        jit = {"jit_compile_false": {"jit_compile": False},
               "jit_compile_true": {"jit_compile": True}}.get(way, {})
        model.compile(optimizer(), loss=loss, **jit)
        history = model.fit(images, targets, batch_size=BATCH, epochs=1, verbose=0)
        return model, images, history.history["loss"][-1], before


def assert_trained(model, images, value, before, what):
    """A finite loss, finite weights and outputs; the stem and most weights moved."""
    assert np.isfinite(value), f"{what}: loss {value}"
    after = [np.array(w) for w in model.trainable_weights]
    assert all(np.isfinite(w).all() for w in after), f"{what}: non-finite weights"
    moved = [not np.array_equal(a, b) for a, b in zip(after, before)]
    # Some weights get exactly zero gradients (SSDLite's predictors of levels where this
    # batch matches no box).
    assert moved[0] and sum(moved) > len(moved) / 2, f"{what}: {sum(moved)} of {len(moved)} moved"
    outputs = model(images, training=False)
    for output in (outputs.values() if isinstance(outputs, dict) else [outputs]):
        assert np.isfinite(np.asarray(output)).all(), f"{what}: non-finite outputs"
