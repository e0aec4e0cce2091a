"""The published checkpoints (older import path; the model registry holds them now).

Every checkpoint belongs to one entry of :mod:`keras_mobilenets.registry`, which
lists it with the variant's builder and reference numbers. This module keeps the names
that older code imported: ``Checkpoint``, ``PREPROCESSING``, ``CHECKPOINTS`` (every
checkpoint, read from the registry on access) and ``FAMILY_BUILDERS``.

Example:
    >>> from keras_mobilenets.weights import registry
    >>> small = [c.file_name for c in registry.CHECKPOINTS if c.family == "mobilenet_v3_small"]
    >>> small[0]
    'weights_mobilenet_v3_small_224_1.0_float.h5'
"""

from keras_mobilenets import registry as _models_registry
from keras_mobilenets.registry import PREPROCESSING, Checkpoint

__all__ = ["CHECKPOINTS", "Checkpoint", "FAMILY_BUILDERS", "PREPROCESSING"]


def __getattr__(name):
    if name == "CHECKPOINTS":
        return _models_registry.checkpoints()
    if name == "FAMILY_BUILDERS":
        return {entry.family: entry.builder for entry in _models_registry.entries()
                if entry.checkpoints}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
