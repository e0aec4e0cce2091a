"""ChannelSplit: numerics against numpy, config and .keras round trips."""

import keras
import numpy as np
import pytest

from keras_mobilenets import ChannelSplit
from tests import helpers


@pytest.mark.parametrize("splits, index", [(2, 0), (2, 1), (3, 2)])
def test_matches_numpy_slice(splits, index):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 12)).astype("float32")
    width = 12 // splits
    expected = x[..., index * width : (index + 1) * width]
    np.testing.assert_array_equal(ChannelSplit(splits, index)(x), expected)


def test_config_and_keras_round_trip(tmp_path):
    layer = ChannelSplit(splits=2, index=1, name="split")
    clone = helpers.assert_config_round_trip(layer)
    assert (clone.splits, clone.index) == (2, 1)
    inputs = keras.Input((4, 4, 6))
    model = keras.Model(inputs, layer(inputs))
    assert model.output_shape == (None, 4, 4, 3)
    path = str(tmp_path / "split.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = helpers.random_images((4, 4, 6))
    np.testing.assert_array_equal(loaded(x), x[..., 3:])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"splits": 0}, "`splits` must be an int >= 1, got 0"),
        ({"splits": 2, "index": 2}, r"`index` must be an int in \[0, 1\], got 2"),
        ({"splits": True}, "`splits` must be an int >= 1, got True"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ChannelSplit(**kwargs)


def test_channels_must_divide():
    message = r"channel count \(5\) must be divisible by `splits` \(2\)"
    with pytest.raises(ValueError, match=message):
        ChannelSplit(2)(keras.Input((4, 4, 5)))
