"""int8 ONNX files of QAT models agree with the QAT Keras models (end-to-end tier).

Each model is trained briefly on the embedded shapes data (32x32), made quantization-aware
(``quantization.quantize_model``, calibrated), fine-tuned for one epoch, exported with
``export.to_onnx(qat, quantization="int8")`` and run with ONNX Runtime on held-out images.
Training runs TensorFlow's CPU kernels: the module is listed in tests/conftest.py's
``KERNEL_DEPENDENT_MODULES`` (marker ``kernels``).
"""

import keras
import numpy as np
import pytest

import keras_mobilenets as km
from keras_mobilenets import export
from keras_mobilenets.training import reestimate_batch_norm

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")
pytest.importorskip("tensorflow_model_optimization")

pytestmark = pytest.mark.end_to_end

SIZE = 32


@pytest.fixture(scope="module")
def shapes_data():
    from keras_mobilenets.datasets import shapes

    x, y = shapes.load("train", num_images=600, image_size=SIZE)
    x_test, _ = shapes.load("test", num_images=200, image_size=SIZE)
    return x.astype("float32"), y, x_test.astype("float32"), shapes.NUM_CLASSES


def _qat_model(builder, kwargs, data):
    from keras_mobilenets import quantization
    from keras_mobilenets.quantization._tf_keras import tf_keras

    x, y, _, classes = data
    keras.utils.set_random_seed(0)
    model = builder(input_shape=(SIZE, SIZE, 3), weights=None, classes=classes,
                    classifier_activation=None, **kwargs)
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=50, epochs=4, verbose=0)
    # Four epochs from scratch leave the moving statistics behind the weights.
    reestimate_batch_norm(model, x[:256])
    qat = quantization.quantize_model(model, calibration_data=x[:256])
    qat.compile(tf_keras.optimizers.Adam(1e-4),
                tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x[:300], y[:300], batch_size=50, epochs=1, verbose=0)
    return qat


@pytest.fixture(scope="module", params=[
    (km.MobileNetV3Small, {"alpha": 0.75, "dropout_rate": 0.0}),
    (km.MobileNetV2, {"alpha": 0.35}),
    (km.ShuffleNetV2, {"scale": 0.5}),
], ids=["MobileNetV3Small", "MobileNetV2", "ShuffleNetV2"])
def trained(request, shapes_data):
    """A QAT model trained on shapes, its held-out logits and its int8 ONNX runner."""
    qat = _qat_model(*request.param, shapes_data)
    logits = qat.predict(shapes_data[2], batch_size=100, verbose=0)
    assert len(np.unique(np.argmax(logits, axis=-1))) > 1  # not a constant model
    tflite = export.LiteRTModel(export.to_tflite(qat, quantization="int8"))
    return {"logits": logits, "runner": export.OnnxModel(export.to_onnx(qat, quantization="int8")),
            "tflite_logits": tflite.predict(shapes_data[2])}


def _agreement(a, b):
    return float(np.mean(np.argmax(a, -1) == np.argmax(b, -1)))


def _correlation(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_qat_int8_file_is_as_close_to_the_qat_model_as_the_int8_tflite_file(trained, shapes_data):
    # The same QAT model's two int8 files: ONNX Runtime's integer kernels should stay as
    # close to the QAT model's logits as LiteRT's. Measured (AMD EPYC Zen 4, onnxruntime
    # 1.32), ONNX against TFLite: correlation 0.987/0.987, 0.979/0.973, 0.903/0.911 for
    # MobileNetV2, ShuffleNetV2, MobileNetV3Small; weights requantized per tensor by ONNX
    # Runtime (before the file held them as int8 per channel) MobileNetV2 and ShuffleNetV2
    # gave 0.941 and 0.929. The top-1 agreement of these near-chance models flips with
    # any rounding (200 images): a looser check.
    onnx_logits = trained["runner"].predict(shapes_data[2])
    onnx = _correlation(onnx_logits, trained["logits"]), _agreement(onnx_logits, trained["logits"])
    tflite = (_correlation(trained["tflite_logits"], trained["logits"]),
              _agreement(trained["tflite_logits"], trained["logits"]))
    assert onnx[0] >= tflite[0] - 0.02, (onnx, tflite)
    assert onnx[1] >= tflite[1] - 0.1, (onnx, tflite)


def test_qat_int8_file_holds_int8_weights_per_channel(trained):
    # Every convolution's weight reaches it through a per-channel DequantizeLinear of int8
    # constants (onnx_int8_weights): none is left for ONNX Runtime to requantize.
    onnx = pytest.importorskip("onnx")
    proto = onnx.load_from_string(trained["runner"].model_content)
    produced_by = {out: node for node in proto.graph.node for out in node.output}
    convolutions = [node for node in proto.graph.node if node.op_type == "Conv"]
    weight_sources = [produced_by.get(node.input[1]) for node in convolutions]
    assert convolutions and all(
        source is not None and source.op_type == "DequantizeLinear" for source in weight_sources)
    int8 = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    assert all(source.input[0] in int8 for source in weight_sources)


def test_qat_int8_file_runs_integer_kernels(trained):
    runner = trained["runner"]
    ops = runner.op_histogram()
    assert ops["QuantizeLinear"] > 10 and ops["DequantizeLinear"] > 10
    # ONNX Runtime fuses the QDQ pairs around most convolutions into QLinearConv; those
    # whose batch norm tfmot keeps apart (before a hard-swish, or a depthwise convolution)
    # stay float32 Conv + BatchNormalization between DequantizeLinear and QuantizeLinear.
    assert runner.optimized_op_histogram()["QLinearConv"] > 10


def test_qat_shufflenet_v1_exports_its_grouped_convolutions():
    # tf_keras runs grouped convolutions in a jit-compiled tf.function that tf2onnx cannot
    # convert; to_onnx traces them as TensorFlow's grouped op: ONNX Conv with `group`.
    from keras_mobilenets import quantization

    onnx = pytest.importorskip("onnx")
    keras.utils.set_random_seed(0)
    model = km.ShuffleNet(input_shape=(SIZE, SIZE, 3), groups=3, scale=0.25, weights=None,
                          classes=5, classifier_activation=None)
    images = np.random.default_rng(0).uniform(0, 255, (16, SIZE, SIZE, 3)).astype("float32")
    reestimate_batch_norm(model, images)
    qat = quantization.quantize_model(model, calibration_data=images)
    content = export.to_onnx(qat, quantization="int8")
    groups = [attribute.i for node in onnx.load_from_string(content).graph.node
              if node.op_type == "Conv" for attribute in node.attribute
              if attribute.name == "group"]
    assert groups.count(3) >= 10, groups  # the grouped 1x1 convolutions, one op each
    runner = export.OnnxModel(content)
    assert runner.optimized_op_histogram()["QLinearConv"] > 10
    # Untrained (calibrated only): measured 0.95-0.97 (its int8 TFLite file: 0.81).
    assert _correlation(runner.predict(images), qat.predict(images, verbose=0)) > 0.9


@pytest.mark.xfail(strict=False, reason=(
    "Not reached (docs/onnx.md): the models this module trains in its time budget are near "
    "chance (0.2-0.3 top-1 on 5 classes), so their int8 TFLite files agree on 0.63-0.86 "
    "only, and the int8 ONNX files on 0.60-0.84."))
def test_qat_int8_file_agrees_with_the_qat_model(trained, shapes_data):
    int8_logits = trained["runner"].predict(shapes_data[2])
    agreement = np.mean(np.argmax(int8_logits, -1) == np.argmax(trained["logits"], -1))
    assert agreement >= 0.98, agreement


#: The demo's recipe (Adam 3e-3, 6 epochs) is tuned for MobileNetV3Small. Measured on one
#: core of an Intel Xeon (held-out float / QAT accuracy): MobileNetV2 0.35 reached 0.869 /
#: 0.864 with it, still learning when the cosine schedule ended, and ShuffleNetV2 0.5
#: 0.357 / 0.373 (its training accuracy climbs slowly from chance for the first epochs;
#: no divergence, the batch-norm statistics agree). With 1e-2 and 12 epochs ShuffleNetV2
#: reached 0.963 / 0.968 (2e-2, 1e-3 and SGD 0.1 did worse in 6 epochs); MobileNetV2 falls
#: to chance at 1e-2, so it keeps 3e-3 with 12 epochs.
RECIPES = {"MobileNetV3Small": {}, "MobileNetV2": {"fine_tune_epochs": 12},
           "ShuffleNetV2": {"fine_tune_learning_rate": 1e-2, "fine_tune_epochs": 12}}


@pytest.mark.acceptance
@pytest.mark.parametrize("backbone, kwargs", [
    ("MobileNetV3Small", {}),
    ("MobileNetV2", {"alpha": 0.35}),
    ("ShuffleNetV2", {"scale": 0.5}),
], ids=["MobileNetV3Small", "MobileNetV2", "ShuffleNetV2"])
def test_int8_file_of_a_trained_qat_model_agrees_with_it(backbone, kwargs, tmp_path):
    """The target at full size: the demo's training (64x64, 6,000 shapes images, 6 epochs,
    one QAT epoch; ``RECIPES`` changes the learning rate and epochs per backbone) with each
    backbone, exported by ``finetune``'s workflow to int8 ONNX; on the 1,000 held-out images
    the file agrees with the QAT Keras model on >= 98% of top-1 predictions. Minutes per
    model: ``python -m pytest -m acceptance``."""
    import dataclasses

    from keras_mobilenets.datasets import shapes
    from keras_mobilenets.demo import demo_config
    from keras_mobilenets.finetune import data as data_lib
    from keras_mobilenets.finetune import workflow

    config = dataclasses.replace(demo_config(), backbone=backbone, backbone_kwargs=kwargs,
                                 **RECIPES[backbone])
    config.check()
    keras.utils.set_random_seed(0)
    x_train, y_train = shapes.load("train", num_images=6000, image_size=64, seed=0)
    x_test, y_test = shapes.load("test", num_images=1000, image_size=64, seed=0)
    data = workflow.TrainingData(
        train=data_lib.arrays_dataset(x_train, y_train, 32, shuffle_seed=0),
        validation=data_lib.arrays_dataset(x_test, y_test, 32),
        class_names=tuple(shapes.CLASS_NAMES))
    steps = workflow.Steps.of(config)
    steps.say("data", "data: shapes")
    result = workflow.run_workflow(
        data, str(tmp_path), config, steps, export=str(tmp_path / "int8.onnx"),
        float32_path=str(tmp_path / "float32.onnx"), verbose=0, checkpoints=False)
    images = x_test.astype("float32")
    qat_logits = result.qat_model.predict(images, batch_size=100, verbose=0)
    int8_logits = export.OnnxModel(tmp_path / "int8.onnx").predict(images)
    accuracy = float(np.mean(np.argmax(qat_logits, -1) == y_test))
    agreement = _agreement(int8_logits, qat_logits)
    print(f"{backbone}: QAT accuracy {accuracy:.3f}, int8 ONNX agreement {agreement:.3f}")
    assert accuracy >= 0.9, (accuracy, result.rows)  # a trained model, not near-ties
    assert agreement >= 0.98, (agreement, result.rows)
