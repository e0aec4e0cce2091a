import keras
import numpy as np
import pytest

from keras_mobilenets.layers import ChannelShuffle, HardSigmoid, HardSwish
from tests.helpers import assert_config_round_trip, assert_keras_round_trip


def relu6(x):
    return np.minimum(np.maximum(x, 0.0), 6.0)


X = np.linspace(-6.0, 6.0, 49, dtype="float32").reshape(1, 7, 7, 1)


def test_hard_sigmoid_matches_formula():
    np.testing.assert_allclose(HardSigmoid()(X), relu6(X + 3.0) / 6.0, atol=1e-6)
    np.testing.assert_allclose(HardSigmoid()(np.array([-4.0, 0.0, 4.0])), [0.0, 0.5, 1.0])


def test_hard_swish_matches_formula():
    np.testing.assert_allclose(HardSwish()(X), X * relu6(X + 3.0) / 6.0, atol=1e-6)


def test_channel_shuffle_permutes_channels_like_the_paper():
    x = np.arange(2 * 2 * 3 * 6, dtype="float32").reshape(2, 2, 3, 6)
    out = np.asarray(ChannelShuffle(groups=2)(x))
    # Channels (g, n) = (2, 3) -> transposed: order 0, 3, 1, 4, 2, 5.
    np.testing.assert_array_equal(out, x[..., [0, 3, 1, 4, 2, 5]])
    out3 = np.asarray(ChannelShuffle(groups=3)(x))
    np.testing.assert_array_equal(out3, x[..., [0, 2, 4, 1, 3, 5]])


def test_channel_shuffle_with_unknown_spatial_size():
    inputs = keras.Input((None, None, 8))
    model = keras.Model(inputs, ChannelShuffle(groups=4)(inputs))
    x = np.random.default_rng(0).normal(size=(1, 5, 3, 8)).astype("float32")
    np.testing.assert_array_equal(model(x), x[..., [0, 2, 4, 6, 1, 3, 5, 7]])


def test_channel_shuffle_rejects_indivisible_channels():
    with pytest.raises(ValueError, match=r"channel count \(6\).*`groups` \(4\)"):
        ChannelShuffle(groups=4)(np.zeros((1, 2, 2, 6), "float32"))


@pytest.mark.parametrize("groups", [0, -1, 2.5, "2", True])
def test_channel_shuffle_rejects_bad_groups(groups):
    with pytest.raises(ValueError, match="groups"):
        ChannelShuffle(groups=groups)


@pytest.mark.parametrize(
    "layer", [HardSigmoid(name="hs"), HardSwish(name="hw"), ChannelShuffle(groups=3, name="cs")]
)
def test_config_round_trip(layer):
    clone = assert_config_round_trip(layer)
    assert clone.name == layer.name


def test_layers_survive_keras_save_and_load(tmp_path):
    inputs = keras.Input((4, 4, 6))
    x = keras.layers.Conv2D(6, 1, name="conv")(inputs)
    x = HardSwish(name="hard_swish")(x)
    x = ChannelShuffle(groups=3, name="shuffle")(x)
    x = HardSigmoid(name="gate")(x)
    model = keras.Model(inputs, x)
    data = np.random.default_rng(1).normal(size=(2, 4, 4, 6)).astype("float32")
    loaded = assert_keras_round_trip(model, data, tmp_path)
    assert type(loaded.get_layer("shuffle")) is ChannelShuffle
    assert loaded.get_layer("shuffle").groups == 3
