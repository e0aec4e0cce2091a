"""calibrate / quantize_model(calibration_data=...): quantizer ranges set from data."""

import keras
import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets import training

pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")
pytest.importorskip("ai_edge_litert")

import tensorflow as tf  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras import quant_ops  # noqa: E402

from keras_mobilenets import export  # noqa: E402
from keras_mobilenets.datasets import shapes  # noqa: E402
from keras_mobilenets.quantization import calibrate, calibration, quantize_model  # noqa: E402

# tfmot's range ops: calibration assigns the range variables and never replaces these.
_RANGE_OPS = ("AllValuesQuantize", "LastValueQuantize", "MovingAvgQuantize")


def _range(qat_model, layer_name, kind):
    """(min, max) of a QAT layer's range variables whose name contains ``kind``."""
    values = {}
    for variable in qat_model.get_layer(layer_name).weights:
        name = variable.name.split("/")[-1].split(":")[0]
        if kind in name and name.endswith(("_min", "_max")):
            values[name[-3:]] = float(np.min(variable.numpy()) if name.endswith("_min")
                                      else np.max(variable.numpy()))
    return values["min"], values["max"]


def _relu_model():
    inputs = keras.Input((4, 4, 3), name="image")
    x = keras.layers.ReLU(name="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))


def test_activation_range_is_the_mean_of_batch_ranges_and_input_range_the_overall_one():
    rng = np.random.default_rng(0)
    first = rng.uniform(-1.0, 2.0, (4, 4, 4, 3)).astype("float32")
    second = rng.uniform(-3.0, 6.0, (4, 4, 4, 3)).astype("float32")
    qat = quantize_model(_relu_model())
    assert _range(qat, "quant_relu", "output") == (-6.0, 6.0)  # tfmot's initial guess

    assert calibrate(qat, np.concatenate([first, second]), batch_size=4) == 2

    data_min = min(first.min(), second.min())
    data_max = max(first.max(), second.max())
    input_min, input_max = _range(qat, "quantize_layer", "")
    np.testing.assert_allclose([input_min, input_max], [data_min, data_max], rtol=1e-6)
    # ReLU's output of each batch: [0, batch max] (its input is fake-quantized with the
    # input range, which moves the max by at most one 8-bit step).
    relu_min, relu_max = _range(qat, "quant_relu", "output")
    step = (data_max - data_min) / 255
    assert relu_min == 0.0
    assert abs(relu_max - (first.max() + second.max()) / 2) <= step


def test_only_range_variables_change_and_tfmot_is_restored():
    model = km.MobileNetV3Small(input_shape=(32, 32, 3), alpha=0.75, classes=3)
    qat = quantize_model(model)
    before = [v.numpy().copy() for v in qat.weights]
    originals = {name: getattr(quant_ops, name) for name in _RANGE_OPS}
    data = tf.data.Dataset.from_tensor_slices(
        (np.random.default_rng(0).uniform(0, 255, (12, 32, 32, 3)).astype("float32"),
         np.zeros(12, "int32"))
    ).batch(4)

    assert calibrate(qat, data, steps=2) == 2

    changed = [variable.name for variable, value in zip(qat.weights, before)
               if not np.array_equal(variable.numpy(), value)]
    assert changed, "calibration changed nothing"
    assert all(name.split(":")[0].endswith(("_min", "_max")) for name in changed), sorted(changed)
    assert {name: getattr(quant_ops, name) for name in _RANGE_OPS} == originals


def test_tfmot_is_restored_after_an_error():
    qat = quantize_model(_relu_model())
    originals = {name: getattr(quant_ops, name) for name in _RANGE_OPS}
    with pytest.raises(ValueError, match=r"`data` must hold images of shape \(H, W, C\) = "
                                         r"\(4, 4, 3\) .*got a batch of shape \(2, 5, 5, 3\)"):
        calibrate(qat, [np.zeros((2, 4, 4, 3), "float32"), np.zeros((2, 5, 5, 3), "float32")])
    assert {name: getattr(quant_ops, name) for name in _RANGE_OPS} == originals


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"qat_model": "float"}, "`qat_model` must be a QAT model returned by quantize_model"),
        ({"batch_size": 0}, "`batch_size` must be an int >= 1, got 0"),
        ({"steps": 1.5}, "`steps` must be None or an int >= 1, got 1.5"),
        ({"data": None}, "`data` must be a numpy array or an iterable of batches"),
        ({"data": []}, "`data` yielded no batch"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    model = _relu_model()
    arguments = {"qat_model": quantize_model(model), "data": np.zeros((2, 4, 4, 3), "float32")}
    arguments.update(kwargs)
    if arguments["qat_model"] == "float":
        arguments["qat_model"] = model
    with pytest.raises(ValueError, match=message):
        calibrate(**arguments)


def test_quantize_model_checks_calibration_batch_size_first():
    with pytest.raises(ValueError, match="`calibration_batch_size` must be an int >= 1, got -1"):
        quantize_model(_relu_model(), calibration_data=np.zeros((2, 4, 4, 3)),
                       calibration_batch_size=-1)


@pytest.mark.slow
def test_calibrated_qat_model_exports_as_close_to_float_as_post_training_int8():
    """Without any training, calibration makes the QAT path's int8 file as good as PTQ.

    Uncalibrated, tfmot's initial ranges ([-6, 6], input [0, 0]) give an int8 file far
    from the float model; calibrated on the same images as post-training quantization,
    its logits are at least about as close to float as PTQ's (measured mean absolute
    logit error: calibrated 0.11, post-training 0.19, uncalibrated 0.68, so a calibration
    that changed nothing fails the assertion).
    """
    images, _ = shapes.load("train", num_images=160, image_size=48)
    images = images.astype("float32")
    model = km.MobileNetV3Small(input_shape=(48, 48, 3), classes=5, classifier_activation=None)
    training.reestimate_batch_norm(model, images[:64])
    held_out = images[128:]
    expected = np.asarray(model(held_out))

    def error(flatbuffer):
        return float(np.mean(np.abs(export.LiteRTModel(flatbuffer).predict(held_out) - expected)))

    ptq = error(export.to_tflite(model, quantization="int8", representative_data=images[:128]))
    calibrated = error(export.to_tflite(
        quantize_model(model, calibration_data=images[:128]), quantization="int8"
    ))
    assert calibrated <= 1.5 * ptq, (calibrated, ptq)


def _range_widths(qat):
    """The smallest width of every activation range variable of ``qat`` (all finite)."""
    widths = []
    for layer in qat.layers:
        names = {v.name.split("/")[-1].split(":")[0]: v.numpy() for v in layer.weights}
        for name in names:
            if name.endswith("_min") and "kernel" not in name:
                low, high = names[name], names[name[:-4] + "_max"]
                assert np.all(np.isfinite(low)) and np.all(np.isfinite(high)), layer.name
                widths.append(float(np.min(high - low)))
    return widths


@pytest.mark.slow
def test_one_batch_or_one_image_calibrates_a_model_that_trains_and_exports():
    """One calibration batch used to train to NaN: tfmot's moving-average update from the
    initial [-6, 6] range, ``6 - (6 - x)`` in float32, rounds ranges narrower than ~5e-7 to
    exactly [0, 0] (an untrained MobileNetV3's activations shrink to ~1e-13 in inference
    mode), and those zero-width ranges made the first training step NaN and the int8 file
    invalid. One batch of 16 images goes the whole way (calibrate, train, export, run);
    one image, the narrowest calibration, is checked up to a training-mode forward pass.
    The range widths are what fails without the fix: with ``MIN_RANGE_WIDTH = 0`` they are
    ~1e-13 here (measured), while this untrained model still trains to a finite loss.
    """
    images, labels = shapes.load("train", num_images=16, image_size=32)
    images = images.astype("float32")
    keras.utils.set_random_seed(0)
    model = km.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=4)

    one_image = quantize_model(model, calibration_data=images[:1])
    assert min(_range_widths(one_image)) >= 0.99 * calibration.MIN_RANGE_WIDTH
    assert np.all(np.isfinite(one_image(images, training=True).numpy()))

    qat = quantize_model(model, calibration_data=images)
    assert min(_range_widths(qat)) >= 0.99 * calibration.MIN_RANGE_WIDTH
    qat.compile("adam", "sparse_categorical_crossentropy")
    loss = qat.fit(images, labels % 4, epochs=1, batch_size=16, verbose=0).history["loss"][0]
    assert np.isfinite(loss), loss
    flatbuffer = export.to_tflite(qat, quantization="int8")  # checked: runs in LiteRT
    assert np.all(np.isfinite(export.LiteRTModel(flatbuffer).predict(images[:2])))


def test_calibrating_a_model_with_synchronized_batch_norms():
    # quantize_model rebuilds the wrappers of synchronized batch norms from config, which
    # scopes their float variables under the wrapper's name: calibration finds them anyway.
    from keras_mobilenets.distribute import synchronize_batch_norm

    inputs = keras.Input((4, 4, 3), name="image")
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))
    data = np.random.default_rng(0).uniform(-1.0, 2.0, (4, 4, 4, 3)).astype("float32")

    plain = quantize_model(model, calibration_data=data)
    synchronized = quantize_model(synchronize_batch_norm(model), calibration_data=data)

    assert synchronized.get_layer("quant_bn").layer.synchronized
    assert _range(synchronized, "quant_relu", "output") == _range(plain, "quant_relu", "output")
    np.testing.assert_array_equal(synchronized(data, training=False).numpy(),
                                  plain(data, training=False).numpy())
