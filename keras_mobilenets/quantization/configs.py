"""QuantizeConfigs for the layers tfmot's default 8-bit registry does not cover.

Which layers need one, and why:

* ``HardSwish``: our own layer; the converter fuses it into one HARD_SWISH op, which
  runs in int8 given a range for its output, so its *output* is quantized.
* ``HardSigmoid``: our own layer, converted to ADD(+3, fused RELU6) then MUL(1/6); each
  needs an output range, so both ``relu6(x + 3)`` (the twin's ``inner`` point) and the
  output are quantized.
* ``Multiply`` (squeeze-and-excitation gate): a two-input op like ``Add`` (which the
  registry covers with an output quantizer); int8 MUL needs an output range.
* ``Rescaling`` (``include_preprocessing``): the input's affine map, converted to MUL
  then ADD; like HardSigmoid both ``x * scale`` and the output are quantized, so the
  whole graph from the (quantized) input on runs in int8.
* ``ChannelShuffle`` and ``ChannelSplit``: pure data moves (RESHAPE, TRANSPOSE, RESHAPE;
  STRIDED_SLICE), which int8 TFLite runs with the input's scale and zero point; they get
  no quantizer at all, so the range of their input carries through unchanged.
* ``Resizing`` (bilinear or nearest upsampling, e.g. in segmentation heads): converted to
  RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR, whose int8 kernels keep the input's scale and
  zero point; an interpolated value never leaves the range of its inputs, so like the data
  moves it gets no quantizer.

Example:
    >>> from keras_mobilenets.quantization.configs import config_for
    >>> config_for(tf_keras.layers.Multiply())  # an OutputQuantizeConfig
"""

from keras_mobilenets.quantization import attention_layers, layers
from keras_mobilenets.quantization._tf_keras import tf_keras, tfmot_keras


def _activation_quantizer():
    # tfmot's default 8-bit settings for activations, which match TFLite's int8 format.
    return tfmot_keras.quantizers.MovingAverageQuantizer(
        num_bits=8, per_axis=False, symmetric=False, narrow_range=False
    )


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class PassThroughQuantizeConfig(tfmot_keras.QuantizeConfig):
    """No quantizer: for layers that only move data, so their input's range carries over.

    Example:
        >>> annotated = tfmot.quantization.keras.quantize_annotate_layer(
        ...     ChannelShuffle(groups=2), quantize_config=PassThroughQuantizeConfig())
    """

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class OutputQuantizeConfig(PassThroughQuantizeConfig):
    """Quantizes only the layer's output: 8 bits, per tensor, asymmetric, moving average.

    These are the settings tfmot's default 8-bit scheme uses for activations (e.g. after
    ``Add``).

    Example:
        >>> annotated = tfmot.quantization.keras.quantize_annotate_layer(
        ...     HardSwish(), quantize_config=OutputQuantizeConfig())
    """

    def get_output_quantizers(self, layer):
        return [_activation_quantizer()]


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class InnerAndOutputQuantizeConfig(OutputQuantizeConfig):
    """Quantizes a twin layer's ``inner`` point (see ``quantization.layers``) and its output.

    Example:
        >>> annotated = tfmot.quantization.keras.quantize_annotate_layer(
        ...     HardSigmoid(), quantize_config=InnerAndOutputQuantizeConfig())
    """

    def get_activations_and_quantizers(self, layer):
        return [(layer.inner, _activation_quantizer())]

    def set_quantize_activations(self, layer, quantize_activations):
        (layer.inner,) = quantize_activations


@tf_keras.saving.register_keras_serializable(package="keras_mobilenets")
class AttentionQuantizeConfig(OutputQuantizeConfig):
    """Quantizes the attention twin's scaled query, logits, softmax weights and output.

    Example:
        >>> annotated = tfmot.quantization.keras.quantize_annotate_layer(
        ...     MultiQueryAttention(4), quantize_config=AttentionQuantizeConfig())
    """

    _POINTS = ("inner_query", "inner_logits", "inner_weights")

    def get_activations_and_quantizers(self, layer):
        return [(getattr(layer, point), _activation_quantizer()) for point in self._POINTS]

    def set_quantize_activations(self, layer, quantize_activations):
        for point, quantized in zip(self._POINTS, quantize_activations):
            setattr(layer, point, quantized)


_CONFIG_BY_CLASS = {
    attention_layers.MultiQueryAttention: AttentionQuantizeConfig,
    attention_layers.GELU: OutputQuantizeConfig,
    attention_layers.StandaloneBatchNorm: InnerAndOutputQuantizeConfig,
    layers.HardSwish: OutputQuantizeConfig,
    layers.HardSigmoid: InnerAndOutputQuantizeConfig,
    layers.QATRescaling: InnerAndOutputQuantizeConfig,
    layers.ChannelShuffle: PassThroughQuantizeConfig,
    layers.ChannelSplit: PassThroughQuantizeConfig,
    tf_keras.layers.Multiply: OutputQuantizeConfig,
    tf_keras.layers.Resizing: PassThroughQuantizeConfig,
}


class LayoutTransform(tfmot_keras.default_8bit.Default8BitQuantizeLayoutTransform):
    """tfmot's default 8-bit layout transforms, keeping the weights of a layer before a ReLU
    quantized.

    tfmot's ``LayerReLUQuantize`` gives a Conv2D, DepthwiseConv2D or Dense layer followed by
    a ReLU layer (no batch norm between) a ``NoOpQuantizeConfig``, to keep a fake
    quantization from between the two; that also leaves the layer's *weights* float32
    through training, which the TFLite converter (and ONNX Runtime) then quantize anyway.
    MobileNetV3's squeeze-and-excitation reduce convolution is such a layer. Here it gets
    its default config with the weight quantizer only: weights quantized, nothing between
    it and the ReLU (whose output stays quantized).

    Example:
        >>> qat = tfmot.quantization.keras.quantize_apply(annotated, scheme=QuantizeScheme())
    """

    def apply(self, model, layer_quantize_map):
        model, layer_quantize_map = super().apply(model, layer_quantize_map)
        registry = tfmot_keras.default_8bit.Default8BitQuantizeRegistry()
        weighted = (tf_keras.layers.Conv2D, tf_keras.layers.DepthwiseConv2D,
                    tf_keras.layers.Dense)
        for layer in model.layers:
            entry = layer_quantize_map.get(layer.name, {})
            config = entry.get("quantize_config")
            if type(config).__name__ == "NoOpQuantizeConfig" and isinstance(layer, weighted):
                weights_only = registry.get_quantize_config(layer)
                weights_only.activation_attrs = []
                entry["quantize_config"] = weights_only
        return model, layer_quantize_map


class QuantizeScheme(tfmot_keras.default_8bit.Default8BitQuantizeScheme):
    """tfmot's default 8-bit scheme with ``LayoutTransform``.

    Example:
        >>> qat = tfmot.quantization.keras.quantize_apply(annotated, scheme=QuantizeScheme())
    """

    def get_layout_transformer(self):
        return LayoutTransform()


def config_for(layer):
    """Returns a new QuantizeConfig for a tf_keras layer, or None to use tfmot's default.

    Args:
        layer: A layer of the tf_keras model built by ``translate.to_tf_keras``.

    Returns:
        A ``tfmot.quantization.keras.QuantizeConfig`` or None.

    Example:
        >>> config_for(tf_keras.layers.Conv2D(8, 3)) is None  # tfmot's default applies
        True
    """
    config_class = _CONFIG_BY_CLASS.get(type(layer))
    return None if config_class is None else config_class()


def custom_objects():
    """Everything tf_keras needs to deserialize a QAT model built by this package.

    Example:
        >>> with tfmot.quantization.keras.quantize_scope(custom_objects()):
        ...     model = tf_keras.models.load_model("qat.keras")
    """
    objects = {
        "OutputQuantizeConfig": OutputQuantizeConfig,
        "InnerAndOutputQuantizeConfig": InnerAndOutputQuantizeConfig,
        "PassThroughQuantizeConfig": PassThroughQuantizeConfig,
        "HardSwish": layers.HardSwish,
        "HardSigmoid": layers.HardSigmoid,
        "ChannelShuffle": layers.ChannelShuffle,
        "ChannelSplit": layers.ChannelSplit,
        "QATRescaling": layers.QATRescaling,
        "AttentionQuantizeConfig": AttentionQuantizeConfig,
        "MultiQueryAttention": attention_layers.MultiQueryAttention,
        "GELU": attention_layers.GELU,
        "StandaloneBatchNorm": attention_layers.StandaloneBatchNorm,
    }
    objects.update({f"keras_mobilenets>{name}": obj for name, obj in list(objects.items())})
    return objects
