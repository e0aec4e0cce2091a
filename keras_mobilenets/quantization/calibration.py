"""Sets the quantization ranges of a QAT model from data, before (or instead of) training.

tfmot creates every activation range at [-6, 6] and moves it towards the data with an
exponential moving average of decay 0.999 during training, the model input's range at
[0, 0], and weight ranges at [-6, 6] until the first training step. A QAT model fine-tuned
for a few hundred steps therefore keeps ranges that are mostly the initial guess (0.999^200
= 0.82), and one exported without training has ranges unrelated to the data.

``calibrate`` computes the ranges and assigns the quantizers' min/max variables (found by
name in the QAT model's public ``weights``: ``quantize_layer_min``, ``kernel_min``,
``pre_activation_min``, ``post_activation_min``, ``output_min``, ... and their ``_max``):

* the tensors the activation quantizers see come from a float copy of the QAT model (the
  same layers without fake-quant ops, same weights, inference mode: batch norm uses its
  moving statistics, dropout is off); each activation range is the mean over the
  calibration batches of the batch range extended to include 0 (the statistic TFLite's
  post-training calibration uses), the input's range is the overall range;
* each weight range is set by the weight's own tfmot quantizer from the float weight.

Every range is then made at least ``MIN_RANGE_WIDTH`` wide. A zero-width range (a tensor
that is 0 on all calibration data, e.g. a ReLU of an untrained layer) makes the fake-quant
op output 0 and its int8 scale 0; tiny widths (an untrained model's activations can shrink
to 1e-13 after a dozen blocks) give scales that underflow float32 in training and in the
int8 file. Weights, batch-norm statistics and tfmot itself are not changed.

Example:
    >>> qat = quantize_model(model)
    >>> calibrate(qat, train_images[:512])
"""

import numpy as np
import tensorflow as tf

from keras_mobilenets._checks import check_input_batch, check_int
from keras_mobilenets.imagenet import expected_input_range

#: Narrowest activation range calibration sets (its int8 step: MIN_RANGE_WIDTH / 255).
MIN_RANGE_WIDTH = 1e-6

_ACTIVATION_PREFIXES = ("output", "pre_activation", "post_activation")


def _is_activation(prefix):
    """Whether a range prefix belongs to an activation point (``post_activation_1``, ...)."""
    base, _, number = prefix.rpartition("_")
    return prefix in _ACTIVATION_PREFIXES or (number.isdigit() and base in _ACTIVATION_PREFIXES)


def _batches(data, batch_size, steps, check):
    """Float32 numpy batches from an array or an iterable of ``x`` / ``(x, y)`` batches.

    ``check(batch, element)`` validates each batch (an array is checked whole first).
    """
    if isinstance(data, np.ndarray) or tf.is_tensor(data):
        data = check(data, "an array")
        iterator = (data[start:start + batch_size] for start in range(0, len(data), batch_size))
    else:
        iterator = iter(data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else data)
    for count, batch in enumerate(iterator):
        if steps is not None and count >= steps:
            return
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        yield check(batch, "a batch").astype("float32")


def check_options(batch_size, steps=None, prefix=""):
    """Raises ``ValueError`` unless ``batch_size`` (and ``steps`` unless None) are ints >= 1."""
    check_int(f"{prefix}batch_size", batch_size, minimum=1)
    check_int(f"{prefix}steps", steps, minimum=1, allow_none=True)


def range_variables(qat_model):
    """The quantizer range variables of a QAT model, by layer.

    Returns:
        A dict ``{layer name: {prefix: (min variable, max variable)}}`` where ``prefix`` is
        the part of the variable name before ``_min`` / ``_max`` (``kernel``, ``output``,
        ``post_activation``, ``quantize_layer``, ...).

    Example:
        >>> sorted(range_variables(qat)["quant_conv"])
        ['kernel', 'output']
    """
    found = {}
    for layer in qat_model.layers:
        # A layer with several activation points (e.g. attention) has several variables of
        # one name: the second and later get "_1", "_2", ... in creation order, as the
        # calibration probe numbers the points.
        variables, seen = {}, {}
        for variable in layer.weights:
            name = _basename(variable)
            count = seen.get(name, 0)
            seen[name] = count + 1
            if count and name.endswith(("_min", "_max")):
                name = f"{name[:-4]}_{count}{name[-4:]}"
            variables[name] = variable
        pairs = {
            name[:-4]: (variables[name], variables[name[:-4] + "_max"])
            for name in variables
            if name.endswith("_min") and name[:-4] + "_max" in variables
        }
        if pairs:
            found[layer.name] = pairs
    return found


class _Recorder:
    """Stands for one activation point of a probe layer (its ``activation``, ``inner``,
    ...): records what it sees, under the names of the point's range variables."""

    def __init__(self, function, records, key, index=0):
        self.function = function
        self.records = records
        self.key = key
        self.suffix = f"_{index}" if index else ""
        self.__name__ = getattr(function, "__name__", "recorded")

    def __call__(self, inputs, *args, **kwargs):
        outputs = self.function(inputs, *args, **kwargs)
        for point, tensor in (("pre_activation", inputs), ("post_activation", outputs)):
            self.records.setdefault((self.key, point + self.suffix), []).append(
                _min_max(tensor))
        return outputs


def _min_max(tensor):
    """Per-channel (last axis) minimum and maximum of a tensor, as numpy arrays."""
    tensor = tf.convert_to_tensor(tensor)
    axes = list(range(tensor.shape.rank - 1))
    low, high = tf.reduce_min(tensor, axis=axes), tf.reduce_max(tensor, axis=axes)
    return np.asarray(low), np.asarray(high)


def _float_probe(qat_model, tf_keras, tfmot_keras, custom_objects, records):
    """A float copy of ``qat_model`` whose call records every quantized tensor's range.

    Returns ``(probe, output_names)``: the probe's outputs are the outputs of the copies
    of the quantized layers (named like their QAT layer in ``output_names``); the copies'
    ``activation`` and ``inner`` callables record into ``records``.
    """
    copies = {}

    def unwrap(layer):
        if isinstance(layer, tfmot_keras.QuantizeWrapper):
            inner = layer.layer
            copy = type(inner).from_config(inner.get_config())
            copies[layer.name] = (copy, layer)
            return copy
        if type(layer).__name__ == "QuantizeLayer":
            copy = tf_keras.layers.Activation("linear", name=layer.name)
            copies[layer.name] = (copy, None)
            return copy
        return type(layer).from_config(layer.get_config())

    with tfmot_keras.quantize_scope(custom_objects):
        clone = tf_keras.models.clone_model(qat_model, clone_function=unwrap)
    outputs, names = [], []
    for name, (copy, wrapper) in copies.items():
        if wrapper is not None:
            weights = _float_weights(wrapper)
            for variable in copy.weights:
                variable.assign(weights[_basename(variable)])
        if wrapper is not None:
            # The activation points the layer's QuantizeConfig quantizes, in its order.
            config = wrapper.quantize_config
            points = config.get_activations_and_quantizers(copy)
            if points:
                config.set_quantize_activations(copy, [
                    _Recorder(function, records, name, index)
                    for index, (function, _) in enumerate(points)
                ])
        for index in range(len(copy.inbound_nodes)):
            reduce = tf_keras.layers.Lambda(_min_max_tensor, name=f"calibration_range_{len(names)}")
            outputs.append(reduce(copy.get_output_at(index)))
            names.append(name)
    return tf_keras.Model(clone.inputs, outputs), names


def _min_max_tensor(tensor):
    axes = list(range(tensor.shape.rank - 1))
    return tf.stack([tf.reduce_min(tensor, axis=axes), tf.reduce_max(tensor, axis=axes)])


def _basename(variable):
    return variable.name.split(":")[0].split("/")[-1]


def _float_weights(wrapper):
    """The float variables of a QuantizeWrapper's layer, by base name (``kernel``, ...).

    They are the wrapper's variables other than its own step counter and ranges (their
    scope is the inner layer's name, or the wrapper's for a wrapper built from config).
    """
    return {
        _basename(v): v for v in wrapper.weights
        if _basename(v) != "optimizer_step" and not _basename(v).endswith(("_min", "_max"))
    }


def _set_weight_ranges(layer, pairs, tfmot_keras):
    """Assigns the weight ranges of one QuantizeWrapper with the weights' own quantizers."""
    weight_prefixes = [prefix for prefix in pairs if not _is_activation(prefix)]
    if not weight_prefixes:
        return
    float_weights = _float_weights(layer)
    quantizers = [q for _, q in layer.quantize_config.get_weights_and_quantizers(layer.layer)]
    for prefix, quantizer in zip(weight_prefixes, quantizers):
        weight = float_weights[prefix]
        min_var, max_var = pairs[prefix]
        if isinstance(quantizer, tfmot_keras.quantizers.LastValueQuantizer):
            quantizer(weight, True, weights={"min_var": min_var, "max_var": max_var})
        else:
            low, high = _min_max(weight) if min_var.shape.rank else (
                np.min(weight.numpy()), np.max(weight.numpy()))
            min_var.assign(np.minimum(low, 0.0).reshape(min_var.shape))
            max_var.assign(np.maximum(high, 0.0).reshape(max_var.shape))


def _activation_range(values, shape, overall):
    """Range variable values from per-batch per-channel (min, max) records."""
    lows = [np.minimum(low, 0.0) for low, _ in values]
    highs = [np.maximum(high, 0.0) for _, high in values]
    if not shape.rank or shape.num_elements() == 1:
        lows = [np.min(low) for low in lows]
        highs = [np.max(high) for high in highs]
    if overall:
        low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    else:
        low, high = np.mean(lows, axis=0), np.mean(highs, axis=0)
    high = np.maximum(high, low + MIN_RANGE_WIDTH)
    return np.reshape(low, shape), np.reshape(high, shape)


def _is_qat_model(model, tf_keras, tfmot_keras):
    return isinstance(model, tf_keras.Model) and any(
        isinstance(layer, tfmot_keras.QuantizeWrapper) or type(layer).__name__ == "QuantizeLayer"
        for layer in model.layers
    )


def check_finite_ranges(qat_model):
    """Raises ``ValueError`` naming every range variable of ``qat_model`` that is not finite.

    Example:
        >>> check_finite_ranges(quantize_model(model))
    """
    bad = [
        variable.name
        for pairs in range_variables(qat_model).values()
        for pair in pairs.values()
        for variable in pair
        if not np.all(np.isfinite(variable.numpy()))
    ]
    if bad:
        raise ValueError(
            f"{qat_model.name!r} has non-finite quantization ranges (NaN or inf) in "
            f"{len(bad)} variable(s): {', '.join(bad[:20])}{' ...' if len(bad) > 20 else ''}."
        )


def calibrate(qat_model, data, batch_size=32, steps=None):
    """Sets every quantizer range of a QAT model from calibration data.

    Weights and batch-norm statistics are not changed; only the min/max variables of the
    fake-quant ops are (see the module docstring). Run it right after ``quantize_model``
    (``quantize_model(model, calibration_data=...)`` does), so that QAT fine-tuning starts
    from ranges that fit the data and a QAT model exports to a sensible int8 file even
    without training. Any amount of data works, down to one image.

    Args:
        qat_model: A model returned by ``quantize_model``.
        data: Calibration inputs in the model's input range (e.g. raw [0, 255] pixels for
            models with ``include_preprocessing``): a numpy array (split into batches of
            ``batch_size``) or an iterable of batches such as a ``tf.data.Dataset``
            (elements ``x`` or ``(x, y)``). A few hundred training images are enough.
        batch_size: Batch size when ``data`` is an array (int >= 1).
        steps: Most batches to use (None: all).

    Returns:
        The number of batches used.

    Raises:
        ValueError: If ``qat_model`` is not a tfmot QAT model, on an invalid
            ``batch_size``/``steps``, if ``data`` yields no batch, or a batch that does not
            fit the model's input (the message names ``data``, what it got and the
            model's input shape: a wrong shape, a non-numeric dtype, NaN or inf, values
            outside [0, 255] or scaled to [0, 1] for a model with built-in
            preprocessing), or if a range comes out non-finite; then no range is changed.

    Example:
        >>> qat = quantize_model(keras_mobilenets.MobileNetV3Small(input_shape=(64, 64, 3)))
        >>> calibrate(qat, images[:256])
        8
    """
    return run_calibration(qat_model, data, batch_size, steps, argument="data")


def run_calibration(qat_model, data, batch_size=32, steps=None, argument="data"):
    """``calibrate``, with ``data`` called ``argument`` in error messages.

    ``quantize_model`` calls it with ``argument="calibration_data"``.
    """
    from keras_mobilenets.quantization import configs
    from keras_mobilenets.quantization._tf_keras import tf_keras, tfmot_keras

    if not _is_qat_model(qat_model, tf_keras, tfmot_keras):
        raise ValueError(
            "`qat_model` must be a QAT model returned by quantize_model, got "
            f"{type(qat_model).__name__} {getattr(qat_model, 'name', '')!r}."
        )
    check_options(batch_size, steps)
    if isinstance(data, (str, bytes, dict)) or data is None or not (
        isinstance(data, np.ndarray) or tf.is_tensor(data) or hasattr(data, "__iter__")
    ):
        raise ValueError(
            f"`{argument}` must be a numpy array or an iterable of batches, got "
            f"{type(data).__name__}."
        )
    expected = tuple(qat_model.input_shape[1:])
    value_range = expected_input_range(qat_model)

    def check(batch, element):
        return check_input_batch(argument, batch, expected, value_range, element=element)

    records = {}
    probe, names = _float_probe(qat_model, tf_keras, tfmot_keras, configs.custom_objects(),
                                records)
    count = 0
    for batch in _batches(data, batch_size, steps, check):
        if not len(batch):
            continue
        outputs = probe(batch, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for name, value in zip(names, outputs):
            value = np.asarray(value)
            records.setdefault((name, "output"), []).append((value[0], value[1]))
        count += 1
    if not count:
        raise ValueError(
            f"`{argument}` yielded no batch: calibration needs at least one input."
        )
    _assign(qat_model, records, tfmot_keras)
    return count


def _assign(qat_model, records, tfmot_keras):
    """Computes every range, checks they are finite, then assigns them."""
    assignments, bad = [], []
    for layer_name, pairs in range_variables(qat_model).items():
        layer = qat_model.get_layer(layer_name)
        is_input = not isinstance(layer, tfmot_keras.QuantizeWrapper)
        for prefix, (min_var, max_var) in pairs.items():
            if not is_input and not _is_activation(prefix):
                continue  # a weight range, set below
            values = records.get((layer_name, "output" if is_input else prefix))
            if not values:
                raise ValueError(
                    f"Calibration found no tensor for {min_var.name!r} (layer {layer_name!r})."
                )
            low, high = _activation_range(values, min_var.shape, overall=is_input)
            if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
                bad.append(min_var.name.rsplit("_min", 1)[0])
            assignments.append((min_var, low, max_var, high))
    if bad:
        raise ValueError(
            f"Calibration of {qat_model.name!r} gives non-finite ranges (the data or the "
            f"model's outputs contain NaN or inf) for: {', '.join(bad[:20])}"
            f"{' ...' if len(bad) > 20 else ''}."
        )
    for min_var, low, max_var, high in assignments:
        min_var.assign(low.astype(min_var.dtype.as_numpy_dtype))
        max_var.assign(high.astype(max_var.dtype.as_numpy_dtype))
    for layer_name, pairs in range_variables(qat_model).items():
        layer = qat_model.get_layer(layer_name)
        if isinstance(layer, tfmot_keras.QuantizeWrapper):
            _set_weight_ranges(layer, pairs, tfmot_keras)
