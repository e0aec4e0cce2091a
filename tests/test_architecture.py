"""The package's shape: imports run down the layers only, no import circles, no import of
the package top from inside, small modules. Read from the source with ``ast``
(function-level imports count too)."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_mobilenets"
MAX_LINES = 450


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name, path):
    """The package modules that ``name`` imports (``from a import b`` counts ``a.b`` when it
    is a module, else ``a``), and whether it imports the package top itself."""
    tree = ast.parse(path.read_text())
    found, imports_top = set(), False
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "keras_mobilenets":
                    imports_top = True
                elif alias.name in MODULES:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([node.module] if node.module else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    found.add(f"{base}.{alias.name}")
                elif base == "keras_mobilenets":
                    imports_top = True  # a name of the package top, e.g. a builder
                elif base in MODULES:
                    found.add(base)
    return found, imports_top


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def test_no_module_imports_the_package_top():
    offenders = sorted(name for name, (_, top) in GRAPH.items()
                       if top and name != "keras_mobilenets")
    assert not offenders, f"import the package top from inside: {offenders}"


def find_cycle():
    """One import cycle among the package's modules (as a list), or None. Parent packages
    are not edges: importing ``a.b`` runs ``a/__init__`` first, which is not a circle."""
    state = {}

    def visit(name, stack):
        state[name] = "open"
        stack.append(name)
        for target in sorted(GRAPH[name][0]):
            if name.startswith(target + "."):
                continue  # a module importing a name its own package re-exports
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target, stack)
                if cycle:
                    return cycle
        stack.pop()
        state[name] = "done"
        return None

    for name in GRAPH:
        if name not in state:
            cycle = visit(name, [])
            if cycle:
                return cycle
    return None


def test_no_import_circle():
    cycle = find_cycle()
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES})"


#: The package's top-level modules and subpackages, from the bottom layer up. A module may
#: import from its own unit and from units of lower layers only. The package top (the
#: public API, which gathers everything) is not in the table.
LAYERS = (
    ("_checks", "quiet"),
    ("registry", "results", "training", "imagenet", "photos", "plotting", "profiling",
     "specs", "layers", "datasets"),
    ("blocks", "weights"),
    ("backbone",),
    ("models", "export"),
    ("detection", "segmentation", "quantization", "zoo"),
    ("distribute",),
    ("finetune",),
    ("demo",),
    ("cli",),
    ("__main__",),
)
LAYER_OF = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def unit_of(module):
    """The top-level unit of a package module: ``keras_mobilenets.export.tflite`` -> ``export``."""
    return module.split(".")[1]


def imports_up_the_layers(graph):
    """``(module, imported module)`` pairs whose import goes to a unit of the same layer
    (another unit) or of a higher one."""
    found = []
    for name, (targets, _) in graph.items():
        if name == "keras_mobilenets":
            continue
        for target in targets:
            if target == "keras_mobilenets" or unit_of(target) == unit_of(name):
                continue
            if LAYER_OF[unit_of(target)] >= LAYER_OF[unit_of(name)]:
                found.append((name, target))
    return sorted(found)


def test_every_unit_has_a_layer():
    units = {unit_of(name) for name in MODULES if name != "keras_mobilenets"}
    assert units == set(LAYER_OF), (
        f"add to LAYERS: {sorted(units - set(LAYER_OF))}; "
        f"gone: {sorted(set(LAYER_OF) - units)}")


def test_imports_run_down_the_layers():
    offenders = imports_up_the_layers(GRAPH)
    assert not offenders, "imports up (or across) the layers: " + ", ".join(
        f"{name} -> {target}" for name, target in offenders)


def test_an_import_up_the_layers_is_found():
    # The check itself: quantization importing distribute (one layer up) is reported.
    graph = {"keras_mobilenets.quantization.api": ({"keras_mobilenets.distribute"}, False)}
    assert imports_up_the_layers(graph) == [
        ("keras_mobilenets.quantization.api", "keras_mobilenets.distribute")]
