"""Every model family takes a training step in every way users train, at small sizes.

The ways: ``fit`` with ``compile()``'s defaults, ``jit_compile=False`` and ``True``, a
custom ``tf.function`` GradientTape loop, and ``fit`` under ``tf.distribute.
MirroredStrategy``; for the float models of every family (ShuffleNet V1 with groups 1, 3
and 8) and for the QAT model of every classifier family. The XLA steps are in the
end-to-end tier (tens of seconds of compilation each). Which kernels run depends on the
machine (TensorFlow's oneDNN kernels or Eigen's; ``TF_ENABLE_ONEDNN_OPTS`` switches them):
CI runs these tests with both. The QAT models' steps are in
``tests/quantization/test_training_matrix.py``; the JAX and PyTorch backends take a
``fit`` step per family in ``tests/test_backends.py``.
"""

import pytest

from tests.training_matrix import CLASSIFIERS, HEADS, WAYS, assert_trained, take_step

pytestmark = pytest.mark.slow


def ways():
    """``WAYS`` as parameters; XLA compilation (tens of seconds a model) is end-to-end tier."""
    return [pytest.param(way, marks=pytest.mark.end_to_end) if way == "jit_compile_true"
            else way for way in WAYS]


# The hybrid's attention at 32x32 has one key (Keras warns that its softmax is 1).
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")
@pytest.mark.parametrize("way", ways())
@pytest.mark.parametrize("name", [*CLASSIFIERS, *HEADS])
def test_float_model_takes_a_training_step(name, way):
    assert_trained(*take_step(way, name), f"{name}, {way}")
