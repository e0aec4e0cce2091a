"""The translation reads the serialized config: a model loaded from .keras quantizes alike."""

import re

import keras
import numpy as np
import pytest

pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")

from keras_mobilenets.finetune import build_classifier  # noqa: E402
from keras_mobilenets.quantization import quantize_model, translate  # noqa: E402
from tests.quantization.helpers import images  # noqa: E402


def test_model_loaded_from_keras_file_quantizes_like_the_in_memory_model(tmp_path):
    # A backbone nested in a user's model (flattened), our registered layers (HardSwish,
    # HardSigmoid), Rescaling and a Dropout called with training=False.
    keras.utils.set_random_seed(0)
    model = build_classifier(3, "MobileNetV3Small", image_size=32, weights=None, alpha=0.35,
                             minimalistic=False)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    batch = images(batch=4, size=32)

    qat = quantize_model(model, calibration_data=batch)
    qat_loaded = quantize_model(loaded, calibration_data=batch)

    def name(layer_or_variable):
        # tfmot names its input QuantizeLayer uniquely per process (quantize_layer_1, ...).
        return re.sub(r"quantize_layer_\d+", "quantize_layer", layer_or_variable.name)

    names = [name(layer) for layer in qat.layers]
    assert [name(layer) for layer in qat_loaded.layers] == names
    assert "quant_expanded_conv_squeeze_excite_hard_sigmoid" in names  # flattened backbone
    assert [type(layer).__name__ for layer in qat_loaded.layers] == [
        type(layer).__name__ for layer in qat.layers]
    for a, b in zip(qat.weights, qat_loaded.weights):
        assert name(a) == name(b)
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    expected = qat(batch, training=False).numpy()
    assert np.ptp(expected) > 0  # calibrated: the outputs depend on the input
    np.testing.assert_array_equal(qat_loaded(batch, training=False).numpy(), expected)


def test_is_functional_reads_the_config():
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert translate._is_functional(functional)
    assert not translate._is_functional(keras.Sequential([keras.Input((4,)),
                                                         keras.layers.Dense(2)]))
    assert not translate._is_functional(keras.layers.Dense(2))
