import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Every test starts from a fresh Keras session and a fixed seed."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield


def pytest_collection_finish(session):
    """Starts the subprocess jobs of the selected tests (see tests/background.py)."""
    from tests import background

    if session.config.option.collectonly:
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):  # xdist parallelizes; start jobs on demand
        return
    background.start([marker.args[0] for item in session.items
                      for marker in item.iter_markers("background")])


def pytest_sessionfinish(session):
    from tests import background

    background.stop()
