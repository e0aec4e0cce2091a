"""quantize_model on every builder: weights, agreement, training, int8 TFLite."""

import keras
import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets.quantization import quantize_model
from tests.helpers import randomize_batch_norm

pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")
pytest.importorskip("ai_edge_litert")

from keras_mobilenets.quantization._tf_keras import tf_keras  # noqa: E402
from keras_mobilenets import export  # noqa: E402
from tests.quantization.helpers import (  # noqa: E402
    assert_int8_graph,
    assert_same_float_weights,
    images,
)

pytestmark = pytest.mark.slow  # every test here quantizes a full MobileNet (5-20 s each)

SIZE = 64
CLASSES = 5
VARIANTS = {
    "mobilenet_v1_0.25": lambda: km.MobileNet(
        input_shape=(SIZE, SIZE, 3), alpha=0.25, classes=CLASSES
    ),
    "mobilenet_v2_0.35": lambda: km.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=0.35, classes=CLASSES
    ),
    "mobilenet_v3_small": lambda: km.MobileNetV3Small(
        input_shape=(SIZE, SIZE, 3), classes=CLASSES
    ),
    "mobilenet_v3_large": lambda: km.MobileNetV3Large(
        input_shape=(SIZE, SIZE, 3), classes=CLASSES
    ),
    "mobilenet_v3_small_minimalistic": lambda: km.MobileNetV3Small(
        input_shape=(SIZE, SIZE, 3), minimalistic=True, classes=CLASSES
    ),
    "shufflenet_v2_0.5": lambda: km.ShuffleNetV2(
        input_shape=(SIZE, SIZE, 3), scale=0.5, classes=CLASSES
    ),
    "shufflenet_v1_g3_0.25": lambda: km.ShuffleNet(
        input_shape=(SIZE, SIZE, 3), groups=3, scale=0.25, classes=CLASSES
    ),
}


# The default suite quantizes the two hardest families (hard-swish + squeeze-and-excitation,
# grouped convolutions + channel shuffle); the others run in the end_to_end tier.
DEFAULT_SUITE = ("mobilenet_v3_small", "shufflenet_v1_g3_0.25")


@pytest.fixture(scope="module", params=[
    name if name in DEFAULT_SUITE else pytest.param(name, marks=pytest.mark.end_to_end)
    for name in sorted(VARIANTS)])
def variant(request):
    """(name, float Keras 3 model with random BN statistics, its QAT model).

    Shared by the tests of one variant; the training test (defined last) changes the
    QAT model's weights, so the weight and agreement tests run before it.
    """
    keras.utils.set_random_seed(0)
    model = VARIANTS[request.param]()
    randomize_batch_norm(model)
    return request.param, model, quantize_model(model)


def test_float_weights_are_copied(variant):
    _, model, qat_model = variant
    assert isinstance(qat_model, tf_keras.Model)
    assert assert_same_float_weights(model, qat_model) > 10


def test_every_weight_layer_quantizes_its_weights(variant):
    # tfmot's default transform leaves a Conv2D/Dense followed directly by a ReLU (MobileNetV3's
    # squeeze-and-excitation reduce convolution) with float weights; the package's
    # QuantizeScheme keeps them quantized, as the int8 files will hold them.
    _, _, qat_model = variant
    weighted = (tf_keras.layers.Conv2D, tf_keras.layers.DepthwiseConv2D, tf_keras.layers.Dense)
    wrappers = [layer for layer in qat_model.layers
                if isinstance(getattr(layer, "layer", None), weighted)]
    assert wrappers
    quantizer_variables = ("kernel_min", "depthwise_kernel_min")
    unquantized = [layer.name for layer in wrappers if not any(
        variable.name.split("/")[-1].startswith(quantizer_variables)
        for variable in layer.weights)]
    assert not unquantized, unquantized


def test_untrained_qat_features_follow_the_float_model(variant):
    """Before training, QAT features differ from float ones by quantization noise only.

    Compared on the last feature map (input of ``avg_pool``), which is input dependent
    (the random-weight logits are nearly the same for every image, so argmax agreement
    would test nothing). The untrained QAT model quantizes every activation with its
    initial range [-6, 6] (8-bit step 0.047) instead of calibrated ranges, and errors
    accumulate over 30-60 layers: measured correlations are 0.93-0.99, so > 0.9 leaves a
    margin while a wrong weight, a missing layer or a swapped input would give ~0.
    """
    _, model, qat_model = variant
    batch = images()
    if not any(layer.name == "rescaling" for layer in model.layers):
        batch = batch / 127.5 - 1.0  # the input range of models without preprocessing
    # tfmot's input QuantizeLayer (an AllValuesQuantizer) starts with the range [0, 0]
    # and widens it on training batches: give it the range of the data, as the first
    # training step would, without touching weights or batch-norm statistics.
    input_quantizer = next(layer for layer in qat_model.layers
                           if type(layer).__name__ == "QuantizeLayer")
    for variable in input_quantizer.weights:
        if variable.name.endswith("_min:0"):
            variable.assign(min(0.0, float(batch.min())))
        elif variable.name.endswith("_max:0"):
            variable.assign(float(batch.max()))
    float_features = keras.Model(model.input, model.get_layer("avg_pool").input)
    qat_features = tf_keras.Model(qat_model.input, qat_model.get_layer("quant_avg_pool").input)
    expected = np.asarray(float_features(batch)).ravel()
    actual = qat_features(batch, training=False).numpy().ravel()
    assert np.corrcoef(expected, actual)[0, 1] > 0.9


def test_qat_trains_and_converts_to_int8(variant):
    name, _, qat_model = variant
    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,  # 3 steps: tracing the train function would cost more
    )
    batch = images()
    labels = np.arange(len(batch)) % CLASSES
    losses = [float(qat_model.train_on_batch(batch, labels)) for _ in range(3)]
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], (name, losses)

    flatbuffer = export.to_tflite(qat_model, quantization="int8")
    runner = export.LiteRTModel(flatbuffer)
    assert runner.input_dtype == np.int8
    assert runner.output_details[0]["dtype"] == np.int8
    assert_int8_graph(flatbuffer)
    if name.startswith("shufflenet_v1"):
        # Shuffles folded, pools and ReLUs rewritten: XNNPACK takes all but the softmax.
        assert not {"TRANSPOSE", "AVERAGE_POOL_2D", "RELU"} & set(runner.op_histogram())
        assert [row["op"] for row in export.non_delegated_ops(flatbuffer)] == ["SOFTMAX"]
    probabilities = runner.predict(batch[:2])
    expected = qat_model(batch[:2], training=False).numpy()
    # int8 softmax output has a step of 1/256; the rest is integer-arithmetic rounding.
    np.testing.assert_allclose(probabilities, expected, atol=0.05)


def test_nested_backbone_with_user_head():
    backbone = km.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35, include_top=False)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = backbone(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dropout(0.1, name="head_dropout")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head_logits")(x)
    model = keras.Model(inputs, outputs, name="user_model")

    qat_model = quantize_model(model)

    names = {layer.name for layer in qat_model.layers}
    assert {"quant_block_16_project", "quant_head_logits", "quant_head_dropout"} <= names
    assert assert_same_float_weights(model, qat_model) > 10
    batch = images(batch=2)
    assert qat_model(batch).shape == (2, 3)
