"""MobileNetV4 layers (arXiv:2404.10518): MultiQueryAttention, GELU, StandaloneBatchNorm."""

import math

import keras
import numpy as np
import pytest

from keras_mobilenets import profiling
from keras_mobilenets.layers import GELU, MultiQueryAttention, StandaloneBatchNorm
from tests import helpers


def _numpy_mqa(query, key, value, heads):
    """Per head h: softmax(q_h k^T / sqrt(d)) v, heads concatenated head-major."""
    batch, rows, cols, _ = query.shape
    d, dv = key.shape[-1], value.shape[-1]
    k = key.reshape(batch, -1, d)
    v = value.reshape(batch, -1, dv)
    out = np.zeros((batch, rows * cols, heads * dv))
    q = query.reshape(batch, rows * cols, heads, d)
    for b in range(batch):
        for h in range(heads):
            logits = q[b, :, h] @ k[b].T / math.sqrt(d)
            weights = np.exp(logits - logits.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            out[b, :, h * dv:(h + 1) * dv] = weights @ v[b]
    return out.reshape(batch, rows, cols, heads * dv)


def test_multi_query_attention_matches_numpy_with_downsampled_key_value():
    rng = np.random.default_rng(0)
    query = rng.normal(size=(2, 4, 6, 3 * 8)).astype("float32")
    key = rng.normal(size=(2, 2, 3, 8)).astype("float32")
    value = rng.normal(size=(2, 2, 3, 5)).astype("float32")
    layer = MultiQueryAttention(num_heads=3)
    out = np.asarray(layer([query, key, value]))
    assert out.shape == (2, 4, 6, 15)
    np.testing.assert_allclose(out, _numpy_mqa(query, key, value, 3), atol=1e-5)
    helpers.assert_config_round_trip(layer)


def test_multi_query_attention_counts_its_matrix_products():
    q, k, v = keras.Input((4, 6, 24)), keras.Input((2, 3, 8)), keras.Input((2, 3, 5))
    model = keras.Model([q, k, v], MultiQueryAttention(3, name="attention")([q, k, v]))
    # (4 * 6 positions x 3 heads) query rows against 2 * 3 keys, 8 + 5 multiply-adds each.
    assert profiling.layer_macs(model.get_layer("attention")) == 24 * 3 * 6 * (8 + 5)


def test_multi_query_attention_checks_arguments_and_shapes():
    with pytest.raises(ValueError, match="num_heads"):
        MultiQueryAttention(num_heads=0)
    with pytest.raises(ValueError, match="num_heads"):
        MultiQueryAttention(num_heads=True)
    q, k = keras.Input((4, 4, 12)), keras.Input((2, 2, 8))
    with pytest.raises(ValueError, match="12 channels"):
        MultiQueryAttention(num_heads=2)([q, k, k])


def test_multi_query_attention_with_unknown_sizes_in_a_saved_model(tmp_path):
    inputs = keras.Input((None, None, 8))
    q = keras.layers.Conv2D(16, 1, name="q")(inputs)
    k = keras.layers.Conv2D(8, 1, strides=2, name="k")(inputs)
    v = keras.layers.Conv2D(4, 1, strides=2, name="v")(inputs)
    out = MultiQueryAttention(num_heads=2, name="attention")([q, k, v])
    model = keras.Model(inputs, out)
    assert model.output_shape == (None, None, None, 8)
    images = helpers.random_images((6, 10, 8), low=-1.0, high=1.0)
    helpers.assert_keras_round_trip(model, images, tmp_path, atol=1e-6)


def test_gelu_is_the_exact_erf_form():
    x = np.linspace(-4.0, 4.0, 17).astype("float32")
    expected = 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    np.testing.assert_allclose(np.asarray(GELU()(x)), expected, atol=1e-6)
    helpers.assert_config_round_trip(GELU(name="gelu"))


def test_standalone_batch_norm_computes_batch_norm():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    ours = StandaloneBatchNorm(epsilon=1e-5, momentum=0.9)
    plain = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)
    ours.build(x.shape)
    plain.build(x.shape)
    weights = [rng.uniform(0.5, 1.5, 4), rng.normal(size=4), rng.normal(size=4),
               rng.uniform(0.5, 1.5, 4)]
    ours.set_weights(weights)
    plain.set_weights(weights)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(plain(x)), atol=1e-6)
    assert isinstance(helpers.assert_config_round_trip(ours), StandaloneBatchNorm)
