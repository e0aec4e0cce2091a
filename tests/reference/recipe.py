"""Deterministic "random" timm state dicts, shared by the reference script and the tests.

Each parameter's values depend only on its timm key and shape (seeded by the key's CRC32),
so the reference files hold no weights: ``make_timm_references.py`` fills a random timm
model with these values and records its logits; the tests rebuild the same state dict from
the recorded keys and shapes, load it through our converter and compare. Batch norm gets
random statistics, layer scale random factors in [0.1, 0.3] (not timm's 1e-5), so every
parameter matters. Numpy only: it runs in both environments.
"""

import zlib

import numpy as np

BATCH = 2
SIZE = 64
IMAGE_SEED = 2404


def _rng(key):
    return np.random.default_rng(zlib.crc32(key.encode("utf8")))


def parameter(key, shape):
    """The value of parameter ``key`` (a float32 array of ``shape``)."""
    rng, shape = _rng(key), tuple(int(d) for d in shape)
    name = key.rpartition(".")[2]
    if name == "num_batches_tracked":
        return np.zeros(shape, "int64")
    if name == "gamma":  # layer scale: small enough that the residual stream stays O(1)
        return rng.uniform(0.1, 0.3, shape).astype("float32")
    if name == "running_var":
        return rng.uniform(0.5, 1.5, shape).astype("float32")
    if name == "running_mean" or name == "bias":
        return rng.normal(0.0, 0.1, shape).astype("float32")
    if name == "weight" and len(shape) == 1:  # batch norm scale
        return rng.uniform(0.5, 1.5, shape).astype("float32")
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)).astype("float32")


def state_dict(shapes):
    """``{key: array}`` for ``{key: shape}``."""
    return {key: parameter(key, shape) for key, shape in shapes.items()}


def images(size=SIZE, batch=BATCH):
    """A ``(batch, size, size, 3)`` float32 batch of [0, 255] pixels (channels last)."""
    rng = np.random.default_rng(IMAGE_SEED)
    return rng.uniform(0.0, 255.0, (batch, size, size, 3)).astype("float32")
