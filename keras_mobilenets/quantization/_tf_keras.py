"""The one place that imports tf_keras and tensorflow-model-optimization.

Both are optional (``pip install keras-mobilenets[qat]``) and imported only when a
quantization function is called, so ``import keras_mobilenets`` never needs them.

Importing tfmot sets ``os.environ["TF_USE_LEGACY_KERAS"] = "1"`` as a side effect (it
does so to pick tf_keras). That would change what later ``tf.keras`` lookups mean in the
user's process, so the previous value is restored right after the import; tfmot has
already bound tf_keras by then.
"""

import os

_INSTALL_HINT = (
    "Quantization-aware training needs tf_keras and tensorflow-model-optimization: "
    "pip install keras-mobilenets[qat]"
)

_previous = os.environ.get("TF_USE_LEGACY_KERAS")
try:
    import tf_keras
    import tensorflow_model_optimization as tfmot
except ImportError as error:
    raise ImportError(f"{_INSTALL_HINT} ({error})") from error
finally:
    if _previous is None:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    else:
        os.environ["TF_USE_LEGACY_KERAS"] = _previous

tfmot_keras = tfmot.quantization.keras

__all__ = ["tf_keras", "tfmot_keras"]
