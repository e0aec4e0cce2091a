"""benchmarks/pretrained_heads.py runs end to end at its smallest sizes on the shared
photographs (random weights: no checkpoint can be downloaded in the tests)."""

import json

import numpy as np
import pytest

from tests import helpers

SCRIPT = helpers.REPO / "benchmarks" / "pretrained_heads.py"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    helpers.shared_data("images/cats_and_dogs.jpg")
    folder = tmp_path_factory.mktemp("pretrained_heads")
    script = helpers.load_script(SCRIPT)
    results = script.main([
        "--data", str(helpers.SHARED_DATA), "--output-dir", str(folder),
        "--ssdlite-size", "160", "--lraspp-size", "128", "--alpha", "0.5",
        "--runs", "2", "--warmup", "1",
    ])
    return script, results, folder


@pytest.mark.slow
@pytest.mark.end_to_end
def test_json_has_the_measurements(run, capsys):
    script, results, folder = run
    with open(folder / "results.json") as f:
        saved = json.load(f)
    assert saved["heads"].keys() == {"ssdlite", "lraspp"}
    assert saved["threads"] == 2 and saved["machine"]["cpu_count"] >= 1
    for head, result in saved["heads"].items():
        assert result["random_weights"] is True and result["weights"] == "random"
        assert len(result["photos"]) >= 4 and "cats_and_dogs.jpg" in result["photos"]
        for name in ("float32", "int8"):
            row = result["files"][name]
            assert (folder / row["file"]).is_file()
            assert row["kib"] * 1024 == pytest.approx((folder / row["file"]).stat().st_size)
            assert 0 < row["latency_ms"] <= row["p90_ms"]
            assert 0.0 <= row["agreement"] <= 1.0
            assert set(row["per_photo"]) == set(result["photos"])
        # int8 weights: a file of about a quarter of the float32 one.
        assert result["files"]["int8"]["kib"] < 0.5 * result["files"]["float32"]["kib"]
        assert "CONV_2D" in result["op_report_int8"]
    # The printed table names the random weights.
    assert script.RANDOM_NOTE in script.table(saved)


@pytest.mark.slow
@pytest.mark.end_to_end
def test_ssdlite_agreement_is_measured_on_real_detections(run):
    _, results, _ = run
    result = results["heads"]["ssdlite"]
    photos = len(result["photos"])
    # Random weights: the top 10 detections of each photo are compared (few pass 0.3).
    assert result["score_threshold"] == 0.0 and result["max_detections"] == 10
    assert result["float_detections"] == 10 * photos
    for name in ("float32", "int8"):
        row = result["files"][name]
        assert row["detections"] == 10 * photos
        scores = np.asarray(row["scores"])
        assert (scores > 0).all() and np.ptp(scores) > 0, scores  # not a constant output
        assert 0.0 <= row["reverse_agreement"] <= 1.0
    # The float32 file reproduces the float Keras model; the int8 one is measured, not 1 by
    # construction (it is below the float32 file's on random weights).
    assert result["files"]["float32"]["agreement"] > 0.8
    assert result["files"]["int8"]["agreement"] <= result["files"]["float32"]["agreement"]


@pytest.mark.slow
@pytest.mark.end_to_end
def test_lraspp_agreement_is_measured_on_real_masks(run):
    _, results, _ = run
    result = results["heads"]["lraspp"]
    float32, int8 = result["files"]["float32"], result["files"]["int8"]
    assert int8["logits_std"] > 0 and float32["logits_std"] > 0
    assert float32["agreement"] > 0.95
    assert 0.0 < int8["agreement"] < 1.0
    per_photo = list(int8["per_photo"].values())
    assert np.mean(per_photo) == pytest.approx(int8["agreement"])  # photos of one size
    assert sum(result["float_classes"].values()) == pytest.approx(1.0)


def test_bad_arguments_exit_with_status_2(capsys):
    script = helpers.load_script(SCRIPT)
    for argv in (["--ssdlite-weights", "imagenet"], ["--lraspp-weights", "missing.pth"],
                 ["--heads", "yolo"], ["--lraspp-size", "16"],
                 ["--ssdlite-weights", "coco", "--alpha", "0.5"]):
        with pytest.raises(SystemExit) as exit_info:
            script.parse_args(argv)
        assert exit_info.value.code == 2, argv
    assert "must be 'coco', 'random'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.end_to_end
def test_zoo_speed_measures_ours_beside_keras_applications(capsys):
    # The zoo speed table's script at tiny sizes: every cell measured where it should be.
    script = helpers.load_script(helpers.REPO / "benchmarks" / "zoo_speed.py")
    rows = script.main(["--variants", "mobilenet_v3_small_0.75,shufflenet_g8", "--size", "64",
                        "--train-size", "32", "--batch", "2", "--repeats", "1", "--runs", "2",
                        "--calibration", "2", "--threads", "1"])
    assert [row["variant"] for row in rows] == ["mobilenet_v3_small_0.75", "shufflenet_g8_1.0"]
    for row in rows:
        f32_ms, int8_ms, ratio, f32_kib, int8_kib, train_ms = row["ours"]
        # The ratio is the median of per-round ratios: near, not equal to, the medians' ratio.
        assert min(f32_ms, int8_ms, train_ms, ratio) > 0
        assert int8_kib < f32_kib
    assert all(value > 0 for value in rows[0]["keras_applications"])
    assert rows[1]["keras_applications"] == [None] * 3  # keras.applications has no ShuffleNet
    printed = capsys.readouterr().out
    assert all(row["variant"] in printed for row in rows)
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--variants", "mobilenet_v9"])
    assert exit_info.value.code == 2
    assert "no zoo variant matches 'mobilenet_v9'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.end_to_end
def test_onnx_speed_times_four_files_per_variant_in_turn(capsys, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("tensorflow_model_optimization")
    script = helpers.load_script(helpers.REPO / "benchmarks" / "onnx_speed.py")
    render = helpers.load_script(helpers.REPO / "tools" / "render_results.py")
    # Four calibration images: with two, this seed's random model gets a zero-width range
    # that LiteRT's int8 kernels crash on (export.validate reports it as a ValueError).
    rows = script.main(["--variants", "mobilenet_v3_small_0.75", "--size", "64",
                        "--threads", "1,2", "--rounds", "2", "--runs", "2",
                        "--calibration", "4", "--seed", "4", "--int8-hard-swish", "int8",
                        "--output", str(tmp_path / "run")])
    assert [(row["variant"], row["threads"]) for row in rows] == [
        ("mobilenet_v3_small_0.75", 1), ("mobilenet_v3_small_0.75", 2)]
    for row in rows:
        assert all(row[name] > 0 for name in script.FILES)
        for label in script.RATIOS:
            median, low, high = row[label]
            assert 0 < low <= median <= high
    printed = capsys.readouterr().out
    assert "onnxruntime 1." in printed and "mobilenet_v3_small_0.75" in printed
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["name"] == "onnx_speed" and record["seed"] == 4
    assert record["settings"]["int8_hard_swish"] == "int8"
    assert record["versions"]["onnxruntime"].startswith("1.")
    (tmp_path / "onnx_speed" / "this_cpu").mkdir(parents=True)
    (tmp_path / "onnx_speed" / "this_cpu" / "seed4.json").write_text(json.dumps(record))
    block = render.render("onnx_speed", str(tmp_path))
    assert "| mobilenet_v3_small_0.75 | 64x64 | 2 |" in block and "seed 4" in block
    assert "to_onnx's int8_hard_swish='int8'" in block
    assert f"{rows[0]['onnx_int8']:.2f}" in block
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--variants", "mobilenet_v9"])
    assert exit_info.value.code == 2


@pytest.mark.slow
@pytest.mark.end_to_end
def test_grouped_conv_benchmark_times_shufflenet_fit_steps_in_turn(capsys):
    from keras_mobilenets.layers.grouped_conv import grouped_kernel

    script = helpers.load_script(helpers.REPO / "benchmarks" / "grouped_conv.py")
    ratios = script.time_models(rounds=2, batch=2, size=32, steps=1)
    assert sorted(ratios) == [1, 3, 8]
    assert ratios[1] == [1.0, 1.0]  # each round's g = 1 step is its own reference
    assert all(len(ratios[g]) == 2 and min(ratios[g]) > 0 for g in (3, 8))
    printed = capsys.readouterr().out
    assert f"grouped kernel: {grouped_kernel()}" in printed
    assert "ratio to g=1 (min-max)" in printed


INT8_SPEED = helpers.REPO / "benchmarks" / "int8_speed.py"


def test_int8_speed_names_bad_arguments(capsys):
    script = helpers.load_script(INT8_SPEED)
    for argv, message in ((["--variants", "mobilenet_v9"], "nothing matches 'mobilenet_v9'"),
                          (["--threads", "1,x"], "--threads: must be positive ints"),
                          (["--threads", "0"], "--threads: must be positive ints"),
                          (["--rounds", "0"], "--rounds: must be >= 1, got 0"),
                          (["--size", "16"], "--size: must be >= 32, got 16"),
                          (["--profile", "resnet50"], "'resnet50' is not a zoo variant")):
        with pytest.raises(SystemExit) as exit_info:
            script.parse_args(argv)
        assert exit_info.value.code == 2, argv
        assert message in capsys.readouterr().err, argv
    args = script.parse_args(["--variants", "shufflenet_v2_0.5,demo"])
    assert args.selected == ["shufflenet_v2_0.5", "demo"] and args.thread_counts == [1, 2]


def test_int8_speed_writes_a_record_the_docs_render(tmp_path, capsys):
    script = helpers.load_script(INT8_SPEED)
    render = helpers.load_script(helpers.REPO / "tools" / "render_results.py")
    rows = script.main(["--variants", "mobilenet_v1_0.25", "--size", "32", "--threads", "1",
                        "--rounds", "2", "--runs", "2", "--warmup", "1", "--calibration", "2",
                        "--seed", "3", "--output", str(tmp_path / "run")])
    (row,) = rows
    cell = row["threads_1"]
    assert row["name"] == "mobilenet_v1_0.25" and row["image_size"] == 32
    assert row["int8_kib"] < row["float32_kib"] / 2
    assert min(cell["float32_ms"], cell["int8_ms"]) > 0
    assert cell["ratio_min"] <= cell["ratio_median"] <= cell["ratio_max"]
    assert "mobilenet_v1_0.25" in capsys.readouterr().out
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["name"] == "int8_speed" and record["seed"] == 3
    assert record["command"].startswith("python benchmarks/int8_speed.py --variants")
    assert "2 rounds of 2 runs" in record["method"]
    (tmp_path / "int8_speed" / "this_cpu").mkdir(parents=True)
    (tmp_path / "int8_speed" / "this_cpu" / "seed3.json").write_text(json.dumps(record))
    block = render.render("int8_speed", str(tmp_path))
    assert "| mobilenet_v1_0.25 | 32x32 |" in block and "seed 3" in block
    assert f"{cell['float32_ms']:.2f}" in block


def test_int8_speed_profile_cuts_models_at_their_blocks():
    import keras_mobilenets as km

    script = helpers.load_script(INT8_SPEED)
    # ShuffleNetV2: stem, max pool, 4 + 8 + 4 units, conv5 (the pooling and the classifier
    # give no 4-D cut).
    units = [f"stage{stage}_{unit}" for stage, count in ((2, 4), (3, 8), (4, 4))
             for unit in range(1, count + 1)]
    model = km.ShuffleNetV2(input_shape=(32, 32, 3), scale=0.5, weights=None)
    assert list(script.blocks(model)) == ["conv1", "maxpool", *units, "conv5"]
    # MobileNetV2: the residual blocks are cut after their add, never inside.
    model = km.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None)
    cuts = script.blocks(model)
    assert [name for name in cuts if name.startswith("block_")] == [
        f"block_{index}" for index in range(1, 17)]
    assert cuts["block_2"].name == "block_2_add"


@pytest.mark.slow
@pytest.mark.end_to_end
def test_int8_speed_profile_times_the_first_blocks(capsys, tmp_path):
    script = helpers.load_script(INT8_SPEED)
    render = helpers.load_script(helpers.REPO / "tools" / "render_results.py")
    rows = script.main(["--profile", "shufflenet_v2_0.5", "--blocks", "3", "--size", "64",
                        "--rounds", "1", "--runs", "2", "--warmup", "1", "--calibration", "8",
                        "--output", str(tmp_path / "run")])
    assert [row["name"] for row in rows] == ["conv1", "maxpool", "stage2_1"]
    assert rows[0]["int8_ops"]["CONV_2D"] == 1 and "MAX_POOL_2D" in rows[1]["int8_ops"]
    assert all(isinstance(row["int8_ms"], float) for row in rows)
    assert "whole prefix" in capsys.readouterr().out
    (tmp_path / "int8_profile" / "cpu").mkdir(parents=True)
    (tmp_path / "run" / "results.json").rename(tmp_path / "int8_profile" / "cpu" / "seed0.json")
    block = render.render("int8_profile", str(tmp_path))
    assert "shufflenet_v2_0.5 at 64x64, 1 thread" in block
    assert f"| conv1 | {rows[0]['float32_ms']:.3f} | {rows[0]['int8_ms']:.3f} |" in block
