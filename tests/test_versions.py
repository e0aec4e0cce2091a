"""ci/oldest-constraints.txt (the oldest-versions CI job) pins setup.cfg's floors."""

import configparser

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests import helpers


def _floors():
    """``{package: floor Version}`` of every ``>=`` requirement of setup.cfg, extras included."""
    config = configparser.ConfigParser()
    config.read(helpers.REPO / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    for extra in config["options.extras_require"].values():
        lines += extra.splitlines()
    floors = {}
    for line in filter(None, (line.strip() for line in lines)):
        requirement = Requirement(line)
        for specifier in requirement.specifier:
            if specifier.operator == ">=":
                floors[canonicalize_name(requirement.name)] = Version(specifier.version)
    return floors


def _pins():
    pins = {}
    for line in (helpers.REPO / "ci" / "oldest-constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_floor_of_the_colab_runtime_is_pinned_at_its_floor():
    floors, pins = _floors(), _pins()
    runtime = ["tensorflow", "keras", "tf-keras", "numpy", "tensorflow-model-optimization",
               "ai-edge-litert", "jax"]
    assert set(runtime) <= set(pins), sorted(pins)
    for name in runtime:
        floor, pin = floors[name], pins[name]
        # The pin is the floor's own release (2.19 -> 2.19.x), not a later one.
        assert pin >= floor and pin.release[:len(floor.release)] == floor.release, (
            f"ci/oldest-constraints.txt pins {name}=={pin}, setup.cfg's floor is {floor}")
