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


_SHARED_SCOPES = ("class", "module", "package")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Keeps tests that share an expensive fixture on one pytest-xdist worker.

    The suite runs with ``--dist loadgroup`` (setup.cfg): tests are spread over the
    workers one by one, except those in the same ``xdist_group``. Every test using a
    module-, class- or package-scoped fixture (a trained or quantized model built once)
    gets the group "<module>:<fixture>=<parameter>", so the fixture is built once, not
    once per worker, while the parameters of a parametrized fixture still spread out.
    (xdist reads the group after the last "@" of a node id only if no "]" follows it.)
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = sorted(
            name for name in info.names_closure
            if any(d.scope in _SHARED_SCOPES for d in info.name2fixturedefs.get(name, ()))
        )
        if not shared:
            continue
        callspec = getattr(item, "callspec", None)
        params = [f"{name}={callspec.params[name]}" for name in shared
                  if callspec is not None and name in callspec.params]
        group = ":".join([item.module.__name__, *params]).replace("[", "(").replace("]", ")")
        item.add_marker(pytest.mark.xdist_group(group))


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
