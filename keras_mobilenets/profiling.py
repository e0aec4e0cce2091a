"""Parameters and multiply-adds (MACs) per layer and per model.

MACs count convolutions (regular, grouped, depthwise, separable) and dense layers, the
convention of the MobileNet and ShuffleNet papers (and the matrix products of layers that
count their own, such as MobileNetV4's attention); element-wise ops, pooling and batch
norm are not counted.
"""

import dataclasses
import math

import keras


@dataclasses.dataclass(frozen=True)
class LayerProfile:
    """One layer: name, class name, output shape, parameters and multiply-adds."""

    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int


@dataclasses.dataclass(frozen=True)
class ModelProfile:
    """A whole model: parameters (all and trainable), multiply-adds and its layers."""

    name: str
    input_shape: tuple
    params: int
    trainable_params: int
    macs: int
    layers: tuple

    def table(self, top=None):
        """A text table of the layers with the most multiply-adds (all when ``top`` is None)."""
        rows = sorted(self.layers, key=lambda layer: -layer.macs)[:top] if top else self.layers
        lines = [f"{'layer':40s} {'kind':22s} {'params':>10s} {'MACs':>14s}"]
        for layer in rows:
            lines.append(f"{layer.name:40s} {layer.kind:22s} {layer.params:10,d} {layer.macs:14,d}")
        lines.append(f"{'total':40s} {'':22s} {self.params:10,d} {self.macs:14,d}")
        return "\n".join(lines)


def _spatial_size(shape):
    return math.prod(shape[1:-1]) if len(shape) > 2 else 1


def layer_macs(layer):
    """Multiply-adds of one built layer (0 for layers that are not conv or dense).

    A layer with a ``count_macs()`` method (e.g. ``MultiQueryAttention``: its two matrix
    products) counts its own.
    """
    count_macs = getattr(layer, "count_macs", None)
    if callable(count_macs):
        return int(count_macs())
    if not isinstance(
        layer,
        (
            keras.layers.Conv2D,
            keras.layers.DepthwiseConv2D,
            keras.layers.SeparableConv2D,
            keras.layers.Dense,
        ),
    ):
        return 0
    in_channels = layer.input.shape[-1]
    out_shape = layer.output.shape
    positions = _spatial_size(out_shape)
    if isinstance(layer, keras.layers.Dense):
        return positions * in_channels * layer.units
    kernel_area = math.prod(layer.kernel_size)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return positions * kernel_area * in_channels * layer.depth_multiplier
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise = positions * kernel_area * in_channels * layer.depth_multiplier
        return depthwise + positions * in_channels * layer.depth_multiplier * layer.filters
    return positions * kernel_area * (in_channels // layer.groups) * layer.filters


def _with_input_shape(model, input_shape):
    if input_shape is None:
        return model
    return keras.models.clone_model(model, input_tensors=keras.Input(shape=tuple(input_shape)))


def profile(model, input_shape=None):
    """Profiles a functional model.

    Args:
        model: A functional ``keras.Model``.
        input_shape: ``(rows, cols, channels)`` to count MACs at, required when the model's
            input size is not fixed; the model is then cloned at that size (parameters do
            not depend on it).

    Returns:
        A :class:`ModelProfile`.

    Raises:
        ValueError: If the input size is unknown and ``input_shape`` is not given.

    Example:
        >>> p = profile(keras_mobilenets.MobileNetV2(weights=None))
        >>> round(p.macs / 1e6)
        300
    """
    if input_shape is None and None in tuple(model.input_shape[1:]):
        raise ValueError(
            f"Model {model.name!r} has input shape {model.input_shape}; pass "
            "`input_shape=(rows, cols, channels)` to count multiply-adds at a fixed size."
        )
    sized = _with_input_shape(model, input_shape)
    layers = tuple(
        LayerProfile(
            name=layer.name,
            kind=type(layer).__name__,
            output_shape=tuple(layer.output.shape),
            params=layer.count_params(),
            macs=layer_macs(layer),
        )
        for layer in sized.layers
        if not isinstance(layer, keras.layers.InputLayer)
    )
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return ModelProfile(
        name=model.name,
        input_shape=tuple(sized.input_shape[1:]),
        params=model.count_params(),
        trainable_params=int(trainable),
        macs=sum(layer.macs for layer in layers),
        layers=layers,
    )
