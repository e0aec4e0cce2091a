import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

#: Test modules that train models (a step or a whole program): marked ``trains``. Which
#: kernels train depends on the machine (TensorFlow's oneDNN or Eigen kernels), so CI runs
#: them with ``TF_ENABLE_ONEDNN_OPTS=1`` and again with ``=0`` (``-m trains``).
TRAINING_MODULES = (
    "test_training_matrix.py", "quantization/test_training_matrix.py",
    "layers/test_grouped_conv.py", "layers/test_batch_norm.py", "models/test_shufflenet.py",
    "quantization/test_quantize.py", "quantization/test_layers_and_io.py",
    "quantization/test_mobilenet_v4_qat.py", "test_finetune.py", "test_cli_finetune.py",
    "test_demo.py", "test_examples.py", "test_distribute.py", "detection/test_example.py",
    "segmentation/test_example.py",
)
_TESTS = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.relative_to(_TESTS).as_posix() in TRAINING_MODULES:
            item.add_marker(pytest.mark.trains)


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
