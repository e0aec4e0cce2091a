"""to_tflite and quantize_model refuse non-finite numbers; a LiteRT failure is an error."""

import keras
import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from keras_mobilenets import export  # noqa: E402
from keras_mobilenets.export import validate  # noqa: E402


def small_model():
    L = keras.layers
    inputs = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(4, 3, name="conv")(inputs)
    x = L.ReLU(name="relu")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, L.Dense(2, name="fc")(x), name="small")


def data():
    return np.random.default_rng(0).uniform(0, 1, (4, 8, 8, 3)).astype("float32")


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_export_refuses_non_finite_weights_and_writes_nothing(tmp_path, bad_value):
    model = small_model()
    kernel = model.get_layer("conv").kernel
    values = kernel.numpy()
    values[0, 0, 0, 0] = bad_value
    kernel.assign(values)
    path = tmp_path / "model.tflite"
    path.write_bytes(b"previous file")
    with pytest.raises(ValueError, match=r"Cannot export 'small': 1 variable\(s\) hold NaN or "
                                         r"inf: conv/kernel\."):
        export.to_tflite(model, path)
    assert path.read_bytes() == b"previous file"  # left as it was


def test_quantize_model_refuses_non_finite_weights():
    pytest.importorskip("tensorflow_model_optimization")
    from keras_mobilenets.quantization import quantize_model

    model = small_model()
    model.get_layer("fc").bias.assign([np.inf, 0.0])
    with pytest.raises(ValueError, match=r"Cannot quantize 'small'.*fc/bias"):
        quantize_model(model)


def test_calibration_refuses_non_finite_data_and_keeps_the_ranges():
    pytest.importorskip("tensorflow_model_optimization")
    from keras_mobilenets.quantization import calibrate, quantize_model

    qat = quantize_model(small_model())
    before = [v.numpy().copy() for v in qat.weights]
    bad = data()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"`data` must hold images of shape \(H, W, C\) = "
                                         r"\(8, 8, 3\) .*all finite.*1 NaN or inf"):
        calibrate(qat, bad)
    for variable, value in zip(qat.weights, before):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_int8_file_with_a_zero_width_range_is_refused(tmp_path):
    # A QAT model whose ReLU range is [0, 0] (what one-batch calibration used to produce):
    # its int8 file has a tensor with scale 0, which LiteRT cannot prepare.
    pytest.importorskip("tensorflow_model_optimization")
    from keras_mobilenets.quantization import quantize_model

    qat = quantize_model(small_model(), calibration_data=data())
    for variable in qat.get_layer("quant_relu").weights:
        if variable.name.endswith(("output_min:0", "output_max:0")):
            variable.assign(0.0)
    path = tmp_path / "qat.tflite"
    with pytest.raises(ValueError, match="invalid quantization scale|LiteRT cannot run"):
        export.to_tflite(qat, path, quantization="int8")
    assert not path.exists()


def test_litert_failures_are_errors_not_crashes(monkeypatch):
    flatbuffer = export.to_tflite(small_model())
    assert validate.check_runs_in_litert(flatbuffer) is True
    with pytest.raises(ValueError, match=r"LiteRT cannot run .*exited with status 1"):
        validate.check_runs_in_litert(flatbuffer[: len(flatbuffer) // 2])
    # A file that makes the runtime abort (as one with huge weights did, exit code 134)
    # kills only the test-run process: simulated by a run script that aborts.
    monkeypatch.setattr(validate, "_RUN_SCRIPT", "import os; os.abort()")
    with pytest.raises(ValueError, match=r"LiteRT cannot run .*killed by signal 6"):
        validate.check_runs_in_litert(flatbuffer)


def test_scales_of_a_valid_int8_file_pass():
    model = small_model()
    flatbuffer = export.to_tflite(model, quantization="int8", representative_data=data())
    validate.check_flatbuffer_scales(flatbuffer)  # no error
    assert validate.nonfinite_variables(model) == []
