"""The QAT model of every classifier family takes a training step in every way.

The ways and families of ``tests/test_training_matrix.py`` (``fit`` with ``compile()``'s
defaults, ``jit_compile=False`` / ``True``, a ``tf.function`` GradientTape loop,
``MirroredStrategy``), for the tf_keras QAT models ``quantization.quantize_model`` makes.
End-to-end tier: quantizing and tracing the QAT graphs takes 10-50 s a cell.
"""

import pytest

from tests.training_matrix import WAYS, assert_trained, take_step

pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")

pytestmark = [pytest.mark.slow, pytest.mark.end_to_end]

#: The QAT model of each classifier family (ShuffleNet V1 once, with grouped convolutions).
QAT_FAMILIES = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                "shufflenet_g3", "shufflenet_v2", "mobilenet_v4_conv", "mobilenet_v4_hybrid")


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", QAT_FAMILIES)
def test_qat_model_takes_a_training_step(name, way):
    assert_trained(*take_step(way, name, qat=True), f"QAT {name}, {way}")
