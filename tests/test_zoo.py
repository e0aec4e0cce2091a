"""The zoo: every registry variant built and measured once, against its reference numbers.

This is the one check of every variant's measured parameters, trainable parameters and
multiply-adds (the family test modules check what is particular to each family), and of the
generated docs/model_zoo.md page, README table and ``keras-mobilenets models`` output.
"""

import pathlib

import pytest

from keras_mobilenets import cli, zoo

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def measurements():
    return zoo.measure_all()  # every variant built at 224x224 (~20 s)


def test_measurements_agree_with_the_references(measurements):
    # What the zoo page shows as measured must be what the references say, where there
    # are references (exact parameter counts, MACs within 3% of the papers'; MobileNetV4's
    # MACs at each variant's own size: tests/models/test_mobilenet_v4.py).
    for variant, measured in zip(zoo.VARIANTS, measurements):
        if variant.params is not None:
            assert measured.params == variant.params, variant.name
        if variant.trainable_params is not None:
            assert measured.trainable_params == variant.trainable_params, variant.name
        if variant.macs_millions is not None and not variant.family.startswith("mobilenet_v4"):
            assert measured.macs / 1e6 == pytest.approx(variant.macs_millions, rel=0.03), (
                variant.name)
        assert 0 < measured.trainable_params < measured.params
    # Width multipliers order the sizes within a family.
    by_name = dict(zip((v.name for v in zoo.VARIANTS), measurements))
    assert (by_name["mobilenet_v2_0.35"].macs < by_name["mobilenet_v2_1.0"].macs
            < by_name["mobilenet_v2_1.4"].macs)
    assert by_name["shufflenet_g3_0.5"].params < by_name["shufflenet_g3_1.0"].params


def test_model_zoo_page_and_readme_table_are_the_generated_ones(measurements, monkeypatch,
                                                                capsys):
    page = (REPO / "docs" / "model_zoo.md").read_text()
    assert page == zoo.model_zoo_markdown(measurements), (
        "docs/model_zoo.md is out of date: keras-mobilenets models --markdown > docs/model_zoo.md"
    )
    assert zoo.model_table_markdown(measurements) in page
    table = zoo.builder_table_markdown(measurements)
    assert table in (REPO / "README.md").read_text(), (
        "README.md's model table is out of date: print zoo.builder_table_markdown() into it"
    )
    # One row per builder, its variants counted and its ranges spanning theirs.
    rows = [line.strip("| ").split(" | ") for line in table.splitlines()[2:]]
    by_builder = {}
    for variant, measured in zip(zoo.VARIANTS, measurements):
        by_builder.setdefault(variant.builder, []).append(measured.params / 1e6)
    assert [row[0].strip("`") for row in rows] == list(by_builder)
    for row in rows:
        params = by_builder[row[0].strip("`")]
        assert int(row[1]) == len(params)
        assert row[2].split("–")[0] == f"{min(params):.1f}"
        assert row[2].split("–")[-1] == f"{max(params):.1f}"
    # The command prints the page (measuring again: reuse the measurements here).
    monkeypatch.setattr(zoo, "measure_all", lambda *args, **kwargs: measurements)
    assert cli.main(["models", "--markdown"]) == 0
    assert capsys.readouterr().out == page
    # One row per variant, every number filled in, with the registry's ImageNet weights.
    models_part = page.split("## Pretrained checkpoints")[0]
    rows = [line for line in models_part.splitlines() if line.startswith("| ") and "`" in line]
    assert [row.split(" | ")[0][2:] for row in rows] == [v.name for v in zoo.VARIANTS]
    cells = [row.strip("| ").split(" | ") for row in rows]
    assert all(cell[2] != "—" and cell[3] != "—" and cell[4] != "—" for cell in cells)
    small = next(cell for cell in cells if cell[0] == "mobilenet_v3_small_1.0")
    assert small[2:5] == ["2,554,968", "2,542,856", "56.5"]
    assert small[7:] == ["224", "67.5"]
    assert all(cell[7] == "none" for cell in cells if "`ShuffleNet(" in cell[1])
    assert all(cell[7] == "224" for cell in cells if "`ShuffleNetV2(" in cell[1])
    with pytest.raises(SystemExit):
        cli.main(["models", "--markdown", "--input-size", "96"])
    assert "--markdown documents the models at 224x224" in capsys.readouterr().err


def test_models_command_text_table():
    # `keras-mobilenets models [--input-size N]`: measured beside the reference numbers.
    lines = cli.models_table(zoo.VARIANTS[:1], input_size=224, progress=False).splitlines()
    assert lines[2].split() == ["mobilenet_v1_1.0", "4,253,864", "4,253,864", "4,231,976",
                                "568.7", "569", "70.6"]
    small = cli.models_table(zoo.VARIANTS[:1], input_size=128, progress=False).splitlines()[2]
    assert float(small.split()[4]) == pytest.approx(568.7 * (128 / 224) ** 2, rel=0.01)
