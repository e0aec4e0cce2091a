"""keras_mobilenets: MobileNet V1/V2/V3/V4 and ShuffleNet V1/V2 for Keras 3.

Example:
    >>> import keras_mobilenets
    >>> model = keras_mobilenets.MobileNetV3Small(weights=None, input_shape=(224, 224, 3))
    >>> qat = keras_mobilenets.quantization.quantize_model(model)   # needs the qat extra
    >>> keras_mobilenets.export.to_tflite(qat, "model.tflite", quantization="int8")
"""

__version__ = "0.1.0"

from keras_mobilenets import quiet

# First, before TensorFlow is imported: the `keras-mobilenets` command is quiet unless
# --verbose; TensorFlow's start-up lines below TF_CPP_MIN_LOG_LEVEL are dropped.
quiet.quiet_command_line()
with quiet.native_log_filter():
    from keras_mobilenets import (
        datasets,
        detection,
        distribute,
        export,
        finetune,
        layers,
        profiling,
        quantization,
        segmentation,
        specs,
        training,
        weights,
        zoo,
    )
    from keras_mobilenets.backbone import StrideEndpoint, stride_endpoints
    from keras_mobilenets.layers import (
        GELU,
        ChannelShuffle,
        ChannelSplit,
        HardSigmoid,
        HardSwish,
        MultiQueryAttention,
    )
    from keras_mobilenets.models import (
        MobileNet,
        MobileNetV2,
        MobileNetV3Large,
        MobileNetV3Small,
        MobileNetV4ConvLarge,
        MobileNetV4ConvMedium,
        MobileNetV4ConvSmall,
        MobileNetV4HybridLarge,
        MobileNetV4HybridMedium,
        ShuffleNet,
        ShuffleNetV2,
    )

__all__ = [
    "ChannelShuffle",
    "ChannelSplit",
    "GELU",
    "HardSigmoid",
    "HardSwish",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Large",
    "MobileNetV3Small",
    "MobileNetV4ConvLarge",
    "MobileNetV4ConvMedium",
    "MobileNetV4ConvSmall",
    "MobileNetV4HybridLarge",
    "MobileNetV4HybridMedium",
    "MultiQueryAttention",
    "ShuffleNet",
    "ShuffleNetV2",
    "StrideEndpoint",
    "datasets",
    "detection",
    "distribute",
    "export",
    "finetune",
    "layers",
    "profiling",
    "quantization",
    "quiet",
    "segmentation",
    "specs",
    "stride_endpoints",
    "training",
    "weights",
    "zoo",
    "__version__",
]
