import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

#: Test modules whose result depends on TensorFlow's CPU kernels (oneDNN or Eigen): those
#: that train models (a step or a whole program) and the int8 export of ShuffleNet (whose
#: grouped convolutions train with a different kernel without oneDNN): marked ``kernels``.
#: CI runs them with ``TF_ENABLE_ONEDNN_OPTS=1`` and again with ``=0`` (``-m kernels``).
KERNEL_DEPENDENT_MODULES = (
    "test_training_matrix.py", "quantization/test_training_matrix.py",
    "layers/test_grouped_conv.py", "layers/test_batch_norm.py", "models/test_shufflenet.py",
    "quantization/test_quantize.py", "quantization/test_layers_and_io.py",
    "quantization/test_mobilenet_v4_qat.py", "test_finetune.py", "test_cli_finetune.py",
    "test_demo.py", "test_examples.py", "test_distribute.py", "detection/test_example.py",
    "segmentation/test_example.py", "export/test_int8_rewrite.py", "export/test_onnx_int8.py",
)
_TESTS = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.relative_to(_TESTS).as_posix() in KERNEL_DEPENDENT_MODULES:
            item.add_marker(pytest.mark.kernels)


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Every test starts from a fresh Keras session and a fixed seed.

    Without a forced garbage collection (``free_memory=False``): Python's own collector frees
    the previous tests' models, while a ``gc.collect()`` before each test cost about 0.2 s
    (tests/test_architecture.py's 101 tests: 23.2 s with it, 0.45 s without).
    """
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    yield
