"""Quantization-aware training (QAT) for the package's Keras 3 models, through tfmot.

tensorflow-model-optimization only quantizes tf_keras (Keras 2) models, so
``quantize_model`` translates a Keras 3 functional model into tf_keras (same weights) and
applies tfmot's default 8-bit scheme, with QuantizeConfigs for the layers tfmot does not
know (see ``configs``). Needs ``pip install keras-mobilenets[qat]``; nothing here imports
tf_keras until a function is called.

Example:
    >>> from keras_mobilenets.quantization import quantize_model
    >>> qat = quantize_model(keras_mobilenets.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35))
    >>> qat.compile("adam", "sparse_categorical_crossentropy")
"""

from keras_mobilenets.quantization.api import load_qat_model, quantize_model, save_qat_model
from keras_mobilenets.quantization.calibration import calibrate

__all__ = ["calibrate", "load_qat_model", "quantize_model", "save_qat_model"]
