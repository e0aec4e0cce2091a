"""Importing the package and its quantization module loads neither tf_keras nor tfmot, and
loading the tf_keras bridge leaves no TF_USE_LEGACY_KERAS behind (run by
tests/quantization/test_layers_and_io.py with TF_USE_LEGACY_KERAS unset).
"""

import os
import sys

import keras_mobilenets  # noqa: F401
import keras_mobilenets.quantization  # noqa: F401

loaded = {"tf_keras", "tensorflow_model_optimization"} & set(sys.modules)
assert not loaded, f"imported by keras_mobilenets: {sorted(loaded)}"
from keras_mobilenets.quantization import _tf_keras  # noqa: E402, F401

assert os.environ.get("TF_USE_LEGACY_KERAS") is None, "tfmot side effect leaked"
