"""Hard-sigmoid and hard-swish as layers (MobileNetV3, arXiv:1905.02244, section 5.2).

They are real, named layers rather than arithmetic on symbolic tensors so that every node
of the graph is a layer (tfmot and the TFLite converter see one clear op each).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class HardSigmoid(keras.layers.Layer):
    """Piecewise-linear sigmoid: ``relu6(x + 3) / 6``.

    Example:
        >>> HardSigmoid()(np.array([-4.0, 0.0, 4.0]))  # -> [0.0, 0.5, 1.0]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def call(self, inputs):
        return ops.relu6(inputs + 3.0) * (1.0 / 6.0)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class HardSwish(keras.layers.Layer):
    """Hard-swish: ``x * relu6(x + 3) / 6``.

    Example:
        >>> HardSwish()(np.array([-4.0, 1.0, 4.0]))  # -> [0.0, 0.6667, 4.0]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def call(self, inputs):
        return inputs * (ops.relu6(inputs + 3.0) * (1.0 / 6.0))

    def compute_output_shape(self, input_shape):
        return input_shape
