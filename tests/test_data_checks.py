"""Every entry point that takes data checks it against the model and names the argument.

Wrong image size, pixels scaled to [0, 1] for a model that takes [0, 255], NaN, strings;
.tflite paths that are missing or not TFLite files. Tiny models keep it fast: a Rescaling
layer doing the package's preprocessing ("tf" mode) in front of one convolution.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mobilenets as km
from keras_mobilenets import _checks, imagenet
from keras_mobilenets.export import delegation
from tests.helpers import random_images

SHAPE = (16, 16, 3)
SHAPE_TEXT = r"\(H, W, C\) = \(16, 16, 3\)"


def pixel_model(outputs="classes"):
    """[0, 255] pixels -> 3 class scores, or per-pixel logits of 3 classes."""
    L = keras.layers
    inputs = keras.Input(SHAPE, name="image")
    scale, offset = imagenet.rescaling_arguments("tf")
    x = L.Rescaling(scale=scale, offset=offset, name="rescaling")(inputs)
    x = L.Conv2D(3, 3, padding="same", name="conv")(x)
    if outputs == "classes":
        x = L.GlobalAveragePooling2D(name="pool")(x)
        x = L.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="pixels")


def _images(batch=4, seed=0):
    return random_images(SHAPE, batch=batch, seed=seed)


# One entry per kind of bad data: (data, what the message must also say).
BAD_DATA = {
    "wrong_size": (random_images((24, 24, 3), batch=2), r"got .* shape \(2, 24, 24, 3\)"),
    "scaled_to_0_1": (_images() / 255.0, r"\[0, 255\].*looks scaled to \[0, 1\]"),
    "nan": (np.where(np.arange(4)[:, None, None, None] == 0, np.nan, _images()),
            r"all finite.*NaN or inf"),
    "strings": (np.full((2, *SHAPE), "x"), r"real numbers.*dtype <U1"),
    "negative": (_images() - 128.0, r"values in \[0, 255\].*got .*values in \[-"),
}


# ---------------------------------------------------------------- the check itself


@pytest.mark.parametrize("kind", sorted(BAD_DATA))
def test_check_input_batch_names_argument_expected_shape_and_problem(kind):
    data, problem = BAD_DATA[kind]
    with pytest.raises(ValueError, match=r"`images` must hold images of shape " + SHAPE_TEXT
                       + r" to match the model's input.*" + problem):
        _checks.check_input_batch("images", data, SHAPE, _checks.PIXEL_RANGE)


def test_check_input_batch_accepts_legit_data_and_knows_no_range_when_none_given():
    check = _checks.check_input_batch
    assert check("x", _images().astype("uint8"), SHAPE, _checks.PIXEL_RANGE).dtype == np.uint8
    assert check("x", _images().astype("float16"), SHAPE, _checks.PIXEL_RANGE).shape == (4, *SHAPE)
    assert check("x", np.zeros((2, *SHAPE)), SHAPE, _checks.PIXEL_RANGE).shape == (2, *SHAPE)
    assert check("x", _images()[0], SHAPE, allow_sample=True).shape == (1, *SHAPE)
    assert check("x", _images() / 255.0 - 0.5, (None, None, 3)).shape == (4, *SHAPE)
    assert check("x", np.zeros((0, *SHAPE)), SHAPE, _checks.PIXEL_RANGE).shape == (0, *SHAPE)
    for dtype in ("bool", "complex64"):
        with pytest.raises(ValueError, match=rf"`x` must hold .*real numbers.*{dtype}"):
            check("x", np.zeros((1, *SHAPE), dtype), SHAPE)


def test_expected_input_range_finds_the_built_in_preprocessing():
    small = dict(input_shape=(32, 32, 3), weights=None, classes=4)
    assert imagenet.expected_input_range(pixel_model()) == (0.0, 255.0)
    assert imagenet.expected_input_range(
        km.MobileNetV3Small(alpha=0.75, minimalistic=True, **small)) == (0.0, 255.0)
    assert imagenet.expected_input_range(  # "torch" mode
        km.ShuffleNetV2(include_preprocessing=True, **small)) == (0.0, 255.0)
    assert imagenet.expected_input_range(km.ShuffleNetV2(**small)) is None  # off by default
    inputs = keras.Input(SHAPE)
    other = keras.Model(inputs, keras.layers.Rescaling(1 / 255.0)(inputs))
    assert imagenet.expected_input_range(other) is None  # not the package's: unknown
    nested_inputs = keras.Input(SHAPE)
    nested = keras.Model(nested_inputs, pixel_model()(nested_inputs))
    assert imagenet.expected_input_range(nested) == (0.0, 255.0)


# ---------------------------------------------------------------- to_tflite


@pytest.mark.parametrize("kind", sorted(BAD_DATA))
def test_to_tflite_checks_representative_arrays_before_converting(kind):
    from keras_mobilenets import export

    data, problem = BAD_DATA[kind]
    with pytest.raises(ValueError, match=r"`representative_data` must hold images of shape "
                       + SHAPE_TEXT + ".*" + problem):
        export.to_tflite(pixel_model(), quantization="int8", representative_data=data)


@pytest.mark.parametrize("kind", ["generator", "dataset"])
def test_to_tflite_checks_each_element_of_a_generator_or_dataset(kind):
    """The check runs inside the converter's calibration loop: its ValueError, not the
    converter's, reaches the caller."""
    from keras_mobilenets import export

    bad = random_images((24, 24, 3), batch=2)
    if kind == "generator":
        def data():
            yield _images(batch=1)  # a good element first
            yield bad
    else:
        data = tf.data.Dataset.from_tensor_slices(bad).batch(2)
    with pytest.raises(ValueError, match=r"`representative_data` must hold images of shape "
                       + SHAPE_TEXT + r".*got an element of shape \(2, 24, 24, 3\)"):
        export.to_tflite(pixel_model(), quantization="int8", representative_data=data)


def test_to_tflite_accepts_uint8_pixels_and_refuses_scaled_elements_of_a_generator():
    from keras_mobilenets import export

    model = pixel_model()
    flatbuffer = export.to_tflite(model, quantization="int8",
                                  representative_data=_images().astype("uint8"))
    assert flatbuffer[4:8] == b"TFL3"
    with pytest.raises(ValueError, match=r"`representative_data`.*\[0, 255\].*got an element"
                                         r".*looks scaled to \[0, 1\]"):
        export.to_tflite(model, quantization="int8",
                         representative_data=lambda: iter([_images() / 255.0]))


# ---------------------------------------------------------------- quantize_model / calibrate


def test_quantize_model_and_calibrate_check_their_data():
    pytest.importorskip("tf_keras")
    pytest.importorskip("tensorflow_model_optimization")
    from keras_mobilenets.quantization import calibrate, quantize_model

    model = pixel_model()
    data, problem = BAD_DATA["wrong_size"]
    with pytest.raises(ValueError, match=r"`calibration_data` must hold images of shape "
                       + SHAPE_TEXT + ".*" + problem):
        quantize_model(model, calibration_data=data)
    bad_dataset = tf.data.Dataset.from_tensor_slices(_images() / 255.0).batch(2)
    with pytest.raises(ValueError, match=r"`calibration_data` must hold images of shape "
                       + SHAPE_TEXT + r".*got a batch.*looks scaled to \[0, 1\]"):
        quantize_model(model, calibration_data=bad_dataset)
    qat = quantize_model(model)
    for kind in ("nan", "strings", "negative"):
        data, problem = BAD_DATA[kind]
        with pytest.raises(ValueError, match=r"`data` must hold images of shape "
                           + SHAPE_TEXT + ".*" + problem):
            calibrate(qat, data)
    with pytest.raises(ValueError, match=r"`data` must hold images of shape " + SHAPE_TEXT
                       + r".*got a batch of shape \(2, 24, 24, 3\)"):
        calibrate(qat, [_images(batch=2), random_images((24, 24, 3), batch=2)])
    assert calibrate(qat, _images().astype("uint8")) == 1


# ---------------------------------------------------------------- LiteRT and .tflite files


@pytest.fixture(scope="module")
def float_file(tmp_path_factory):
    pytest.importorskip("ai_edge_litert")
    from keras_mobilenets import export

    keras.backend.clear_session()
    path = tmp_path_factory.mktemp("tflite") / "pixels.tflite"
    export.to_tflite(pixel_model(), path)
    return path


@pytest.mark.parametrize("kind", ["wrong_size", "nan", "strings"])
def test_litert_predict_checks_images(float_file, kind):
    from keras_mobilenets import export

    data, problem = BAD_DATA[kind]
    with pytest.raises(ValueError, match=r"`images` must hold images of shape " + SHAPE_TEXT
                       + ".*" + problem):
        export.LiteRTModel(float_file).predict(data)


def test_litert_predict_takes_any_real_dtype_and_no_range_for_float_files(float_file):
    from keras_mobilenets import export

    runner = export.LiteRTModel(float_file)
    images = _images()
    expected = runner.predict(images)
    np.testing.assert_allclose(runner.predict(images.astype("float16")), expected, atol=1e-2)
    assert runner.predict(images / 255.0).shape == (4, 3)  # a file records no range


def test_uint8_pixels_are_quantized_for_an_int8_file_not_cast():
    pytest.importorskip("ai_edge_litert")
    from keras_mobilenets import export

    images = np.round(_images(batch=8)).astype("uint8")
    model = pixel_model()
    runner = export.LiteRTModel(export.to_tflite(model, quantization="int8",
                                                 representative_data=images))
    assert runner.input_dtype == np.int8
    np.testing.assert_allclose(runner.predict(images),
                               runner.predict(images.astype("float32")), atol=1e-6)


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"PK\x03\x04" + bytes(64)],
                         ids=["empty", "text", "zip"])
def test_a_file_that_is_not_tflite_is_named_everywhere_it_is_read(tmp_path, content):
    pytest.importorskip("ai_edge_litert")
    from keras_mobilenets import export
    from keras_mobilenets.export import compare

    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    message = rf"'{path}' is not a TFLite model \(.*b'TFL3'"
    for read in (export.LiteRTModel, export.op_report, export.op_histogram,
                 export.non_delegated_ops, delegation.flatbuffer_bytes):
        with pytest.raises(ValueError, match=message):
            read(path)
    with pytest.raises(ValueError, match=message):
        compare.tflite_row("int8", path, _images(), np.zeros(4, "int64"))
    with pytest.raises(ValueError, match=r"The bytes are not a TFLite model"):
        export.LiteRTModel(content)


def test_a_missing_tflite_file_is_named(tmp_path):
    pytest.importorskip("ai_edge_litert")
    from keras_mobilenets import export

    path = tmp_path / "missing.tflite"
    for read in (export.LiteRTModel, export.op_report, delegation.flatbuffer_bytes):
        with pytest.raises(FileNotFoundError, match=rf"'{path}' does not exist"):
            read(path)
    with pytest.raises(FileNotFoundError, match="is a directory"):
        export.LiteRTModel(tmp_path)


# ---------------------------------------------------------------- segmentation, detection


def test_segmentation_evaluate_checks_images_and_masks():
    from keras_mobilenets import segmentation

    model = pixel_model("logits")
    masks = np.zeros((4, 16, 16), "int32")
    for kind in ("wrong_size", "scaled_to_0_1", "nan", "strings"):
        data, problem = BAD_DATA[kind]
        with pytest.raises(ValueError, match=r"`images` must hold images of shape "
                           + SHAPE_TEXT + ".*" + problem):
            segmentation.evaluate(model, data, masks[:len(data)])
    with pytest.raises(ValueError, match=r"`masks` must have shape \(N, rows, cols\) with "
                                         r"N = 4.*got \(3, 16, 16\)"):
        segmentation.evaluate(model, _images(), masks[:3])
    bad_masks = masks.copy()
    bad_masks[0, 0, :2] = (3, 7)
    with pytest.raises(ValueError, match=r"`masks` must hold class ids in \[0, 3\) or the "
                                         r"ignore label 255; got 3, 7"):
        segmentation.evaluate(model, _images(), bad_masks, num_classes=3)
    with pytest.raises(ValueError, match=r"`masks` must hold class ids in \[0, 3\)"):
        segmentation.score_masks(bad_masks, masks, num_classes=3)
    bad_masks[0, 0, :2] = 255  # the ignore label is allowed
    scores = segmentation.evaluate(model, _images().astype("uint8"), bad_masks, num_classes=3)
    assert 0.0 <= scores.mean_iou <= 1.0


def test_coco_metrics_checks_labels_and_scores():
    pytest.importorskip("pycocotools")
    from keras_mobilenets.detection import coco_metrics

    boxes = np.array([[[0.1, 0.1, 0.5, 0.5]]], "float32")
    truth = {"boxes": boxes, "labels": np.array([[1]])}
    found = {"boxes": boxes, "labels": np.array([[1]]), "scores": np.array([[0.9]])}
    assert coco_metrics(truth, found, (16, 16), "rel_xyxy", num_classes=2)["mAP@0.5"] == (
        pytest.approx(1.0))
    with pytest.raises(ValueError, match=r"`ground_truth\['labels'\]` must hold class ids in "
                                         r"\[0, 1\).*got 1"):
        coco_metrics(truth, found, (16, 16), "rel_xyxy", num_classes=1)
    with pytest.raises(ValueError, match=r"`detections\['scores'\]` must hold finite numbers "
                                         r"of shape \(1, 1\).*shape \(1, 2\)"):
        coco_metrics(truth, {**found, "scores": np.array([[0.9, 0.1]])}, (16, 16), "rel_xyxy")
    with pytest.raises(ValueError, match=r"`detections\['scores'\]` must hold finite"):
        coco_metrics(truth, {**found, "scores": np.array([[np.nan]])}, (16, 16), "rel_xyxy")
    with pytest.raises(ValueError, match=r"`ground_truth\['boxes'\]` must hold numbers"):
        coco_metrics({**truth, "boxes": np.full((1, 1, 4), "a")}, found, (16, 16), "rel_xyxy")


# ---------------------------------------------------------------- fine-tuning


def test_finetune_compare_models_checks_images_and_labels():
    from keras_mobilenets.finetune import compare_models

    model = pixel_model()
    labels = np.zeros(4, "int64")
    for kind in ("wrong_size", "scaled_to_0_1", "nan"):
        data, problem = BAD_DATA[kind]
        with pytest.raises(ValueError, match=r"`images` must hold images of shape "
                           + SHAPE_TEXT + ".*" + problem):
            compare_models(model, data, labels[:len(data)])
    with pytest.raises(ValueError, match=r"`labels` must be 4 integer class ids .* \[0, 3\)"):
        compare_models(model, _images(), np.array([0, 1, 2, 3]))
    rows, files = compare_models(model, _images(), labels)
    assert rows[0].name == "Keras float" and files == {}


def test_finetune_workflow_refuses_images_of_another_size_before_training(tmp_path):
    from keras_mobilenets import finetune
    from keras_mobilenets.finetune import workflow

    def dataset(images):
        return tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images), "int32"))
                                                  ).batch(2)

    config = finetune.FineTuneConfig(image_size=32, weights=None, calibration_images=4)
    good = random_images((32, 32, 3), batch=4)
    for data, argument, problem in [
        (workflow.TrainingData(dataset(random_images((48, 48, 3), batch=4)), None,
                               ("a", "b")), "data.train", r"shape \(4, 48, 48, 3\)"),
        (workflow.TrainingData(dataset(good), dataset(good / 255.0), ("a", "b")),
         "data.validation", r"looks scaled to \[0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=rf"`{argument}` must hold images of shape "
                           r"\(H, W, C\) = \(32, 32, 3\).*" + problem):
            workflow.run_workflow(data, str(tmp_path), config, workflow.Steps.of(config))
