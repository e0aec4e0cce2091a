"""The model registry: every builder and variant listed once, lookups with clear errors."""

import collections

import pytest

import keras_mobilenets
from keras_mobilenets import registry


def test_every_public_builder_is_registered_and_has_entries():
    public = [name for name in keras_mobilenets.__all__
              if callable(getattr(keras_mobilenets, name)) and name[0].isupper()
              and hasattr(keras_mobilenets.models, name)]
    assert sorted(registry.builder_names()) == sorted(public)
    for name in registry.builder_names():
        assert registry.get_builder(name) is getattr(keras_mobilenets, name)
        assert registry.entries(builder=name), f"{name} has no registry entry"


def test_entries_are_unique_and_consistent():
    names = [entry.name for entry in registry.entries()]
    assert len(names) == len(set(names))
    families = collections.defaultdict(set)
    for entry in registry.entries():
        families[entry.family].add(entry.builder)
        assert entry.preprocessing in registry.PREPROCESSING
        for checkpoint in entry.checkpoints:
            # A checkpoint belongs to its entry's family and width, and says how to feed it.
            assert checkpoint.family == entry.family, checkpoint.name
            width = entry.kwargs.get("alpha", entry.kwargs.get("scale", 1.0))
            assert checkpoint.alpha == width, checkpoint.name
            assert checkpoint.minimalistic == entry.kwargs.get("minimalistic", False)
            # Keras' files expect the entry's preprocessing; converted torchvision files
            # come with their normalisation inside the model.
            expected = "none" if checkpoint.source != "keras.applications" else (
                entry.preprocessing)
            assert checkpoint.preprocessing == expected, checkpoint.name
            assert checkpoint.builder == entry.builder
    assert all(len(builders) == 1 for builders in families.values()), families
    # One file per checkpoint (timm's one file serves with and without the top).
    files = [(c.file_name, c.include_top) for c in registry.checkpoints()]
    assert len(files) == len(set(files))
    assert sum(c.source == "keras.applications" for c in registry.checkpoints()) == 104


def test_lookups_and_their_errors():
    entry = registry.get("mobilenet_v2_0.35")
    assert (entry.builder, dict(entry.kwargs), entry.params) == (
        "MobileNetV2", {"alpha": 0.35}, 1_691_208)
    assert entry.imagenet_input_sizes == [96, 128, 160, 192, 224]
    model = entry.build(input_shape=(64, 64, 3), classes=7)
    assert model.output_shape == (None, 7)
    with pytest.raises(ValueError, match="Unknown model variant 'mobilenet_v9'"):
        registry.get("mobilenet_v9")
    with pytest.raises(ValueError, match=r"`backbone` must be one of \('MobileNet', "):
        registry.get_builder("ResNet50", argument="backbone")
    with pytest.raises(TypeError):
        entry.kwargs["alpha"] = 1.0  # entries are read-only
    with pytest.raises(ValueError, match="`preprocessing` must be one of"):
        registry.ModelEntry("x", "MobileNet", "mobilenet_v1", {}, "caffe")
    with pytest.raises(ValueError, match="is registered already"):
        registry.register(entry)


def test_selection_reads_the_checkpoints_of_the_registry(monkeypatch):
    from keras_mobilenets.weights import selection

    request = selection.WeightsRequest("mobilenet_v2", alpha=0.35, rows=128, cols=128)
    assert selection.select_checkpoint(request).file_name == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_128.h5")
    # Without the entry's checkpoints there is nothing to select.
    entry = registry.get("mobilenet_v2_0.35")
    monkeypatch.setitem(registry._ENTRIES, entry.name,
                        registry.ModelEntry(**{**entry.__dict__, "checkpoints": ()}))
    with pytest.raises(ValueError, match=r"`alpha` must be one of \[0.5, 0.75, 1.0, 1.3, 1.4\]"):
        selection.select_checkpoint(request)


def test_checkpoint_table_lists_every_file_once_with_its_licence():
    from keras_mobilenets import zoo
    from keras_mobilenets.models import catalog

    rows = [line.strip("| ").split(" | ") for line in
            zoo.checkpoint_table_markdown().splitlines()[2:]]
    assert sum(int(row[3]) for row in rows) == (
        len({c.file_name for c in registry.checkpoints()}) + len(catalog.HEAD_CHECKPOINTS))
    assert all(row[6] != "—" for row in rows), "a checkpoint source without a licence note"
    shufflenet = next(row for row in rows if row[0] == "shufflenet_v2_1.0")
    assert shufflenet[1:3] == ['`"imagenet"`', "torchvision"]
    assert shufflenet[5] == "ImageNet top-1 69.362"
