"""tf.distribute: strategies by name, and MirroredStrategy training equal to one device."""

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from keras_mobilenets import distribute
from keras_mobilenets.training import batch_norm_layers
from tests import helpers


@pytest.mark.slow
@pytest.mark.end_to_end
def test_mirrored_training_matches_one_device(tmp_path):
    # In a fresh process (tests/scripts/mirrored_vs_one_device.py): the two logical CPUs
    # must be configured before TensorFlow starts.
    process = helpers.run_python([helpers.SCRIPTS / "mirrored_vs_one_device.py"], tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    result = helpers.printed_result(process.stdout)
    synchronized, per_replica = result["synchronized"], result["per_replica"]
    assert synchronized["replicas"] == per_replica["replicas"] == 2
    # Training moved the weights by ~7e-3. With synchronized batch norms the two replicas
    # compute what one device computes, only with float32 sums in another order (two
    # partial sums, then an all-reduce): the weights differ by ~2e-7 after the 4 steps,
    # with oneDNN on and off. The tolerance, 1e-5, is ~50x that and ~500x below the update.
    # The model uses hard-swish: with ReLU (minimalistic=True) an element whose ReLU input
    # is exactly 0 takes a zero or a full gradient depending on the last bit of its batch
    # norm, and oneDNN's kernels, which sum in another order, flip such elements (weights
    # then differ by ~8e-4).
    assert result["update"] > 5e-3
    assert synchronized["max_weight_difference"] < 1e-5
    assert synchronized["losses"] == pytest.approx(result["single_losses"], rel=1e-5)
    # Control: with per-replica batch norms (statistics of 8 images instead of 16) the
    # same comparison sees a difference of the order of the update itself.
    assert per_replica["max_weight_difference"] > 1e-3


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _run_cluster(commands, folder):
    """Runs ``commands`` side by side; those named ``workerN`` form a 2-worker cluster."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = {}
    for name, command in commands.items():
        env = helpers.environment(KERAS_MOBILENETS_SMOKE="1", MPLBACKEND="Agg")
        if name.startswith("worker"):
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers},
                                           "task": {"type": "worker", "index": int(name[-1])}})
        processes[name] = subprocess.Popen(command, cwd=folder, env=env, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finished = {}
    try:
        for name, process in processes.items():
            stdout, stderr = process.communicate(timeout=helpers.SUBPROCESS_TIMEOUT_S)
            assert process.returncode == 0, (name, stderr[-3000:])
            finished[name] = (process, stdout)
    finally:
        for process in processes.values():
            process.kill()
    return finished


@pytest.mark.slow
@pytest.mark.end_to_end
def test_multi_worker_training_matches_one_device(tmp_path):
    pytest.importorskip("tensorflow_model_optimization")
    # tests/scripts/multi_worker_fit.py as each of two workers and, for reference, on one
    # device: 4 SGD steps of a Keras 3 classifier, then 4 of its calibrated QAT model.
    script = str(helpers.SCRIPTS / "multi_worker_fit.py")
    runs = _run_cluster(
        {name: [sys.executable, script, str(tmp_path / f"{name}.npz")]
         for name in ("worker0", "worker1", "single")}, tmp_path)
    results = {name: helpers.printed_result(stdout) for name, (_, stdout) in runs.items()}
    assert [results[n]["multi_worker"] for n in runs] == [True, True, False]
    assert [results[n]["replicas"] for n in runs] == [2, 2, 1]
    weights = {name: np.load(tmp_path / f"{name}.npz") for name in runs}

    def largest_difference(a, b, prefix):
        return max(float(np.max(np.abs(weights[a][key] - weights[b][key])))
                   for key in weights[a].files if key.startswith(prefix))

    # Keras 3's fit cannot train under a multi-worker strategy; fit_phase trains a tf_keras
    # twin there and copies the weights back. The two workers end with the same weights, and
    # those of one device with the whole batch up to float32 rounding (~5e-7 measured; the
    # update itself is ~3e-2).
    assert largest_difference("worker0", "worker1", "trained/") == 0.0
    update = max(float(np.max(np.abs(weights["single"][f"trained/{i}"]
                                      - weights["single"][f"start/{i}"])))
                 for i in range(sum(k.startswith("start/") for k in weights["single"].files)))
    assert update > 1e-2
    assert largest_difference("worker0", "single", "trained/") < 1e-5
    assert results["worker0"]["loss"] == pytest.approx(results["single"]["loss"], rel=1e-5)
    # The QAT model (tf_keras, its batch norms synchronized too) trains natively under the
    # strategy; both workers hold the same weights. QAT training amplifies rounding-level
    # differences (an activation near a rounding boundary lands on another 8-bit step): on
    # one device, only switching the batch norms' fused kernel for the unfused one moved
    # the QAT weights by 3e-3 after these 4 steps (the update itself is ~2e-3), so QAT is
    # compared with one device loosely (4e-3 measured).
    assert largest_difference("worker0", "worker1", "qat/") == 0.0
    kernels = [k for k in weights["single"].files if k.startswith("qat/") and "kernel:" in k]
    assert kernels and max(float(np.max(np.abs(weights["worker0"][k] - weights["single"][k])))
                           for k in kernels) < 2e-2


@pytest.mark.slow
@pytest.mark.end_to_end
def test_multi_device_example_runs_on_two_workers(tmp_path):
    # examples/multi_device_training.py --strategy multiworker, as two local workers (smoke
    # mode: the whole fine-tuning workflow at 32x32 on 40 shapes images).
    script = str(helpers.REPO / "examples" / "multi_device_training.py")
    runs = _run_cluster(
        {f"worker{i}": [sys.executable, script, "--strategy", "multiworker", "--cpus", "0",
                        "--output-dir", f"run{i}"] for i in range(2)}, tmp_path)
    outputs = [stdout for _, stdout in runs.values()]
    for stdout in outputs:
        assert "with 2 replica(s): global batch 8, 4 images per replica" in stdout
        assert "frozen: val accuracy per epoch" in stdout
    # Both workers trained the same model: the same validation accuracy and result table.
    tables = [stdout[stdout.index("frozen: val accuracy"):] for stdout in outputs]
    assert tables[0] == tables[1]
    for i in range(2):
        assert (tmp_path / f"run{i}" / "model.keras").is_file()


def test_strategy_from_name():
    import tensorflow as tf

    assert distribute.strategy_from_name("default") is tf.distribute.get_strategy()
    assert not distribute.is_multi_worker(tf.distribute.get_strategy())
    assert not distribute.is_multi_worker(
        distribute.strategy_from_name("mirrored", devices=["/cpu:0"]))
    assert distribute.strategy_from_name("mirrored", devices=["/cpu:0"]).num_replicas_in_sync == 1
    with pytest.raises(ValueError, match=r"`strategy` must be one of .*'gpu'"):
        distribute.strategy_from_name("gpu")
    with pytest.raises(ValueError, match="`devices` only applies to strategy='mirrored'"):
        distribute.strategy_from_name("default", devices=["/cpu:0"])
    with pytest.raises(ValueError, match="`strategy='tpu'`: no TPU found"):
        distribute.strategy_from_name("tpu")


def test_synchronize_batch_norm_covers_nested_models():
    from keras_mobilenets.finetune import build_classifier

    model = build_classifier(3, "MobileNetV3Small", image_size=32, weights=None, alpha=0.35,
                             minimalistic=True)
    synchronized = distribute.synchronize_batch_norm(model)
    norms = batch_norm_layers(synchronized)
    assert norms and all(layer.synchronized for layer in norms)
    assert len(norms) == len(batch_norm_layers(model))
    # A new model (created with the option), the same weights; the original is unchanged.
    assert not any(layer.synchronized for layer in batch_norm_layers(model))
    for a, b in zip(model.get_weights(), synchronized.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_qat_models_keep_synchronized_batch_norms():
    # tf_keras' BatchNormalization config has no `synchronized`, so tfmot's cloning dropped
    # it; quantize_model carries it over, and the QAT batch norms use the unfused kernel
    # (tf_keras refuses fused=True with synchronized=True).
    pytest.importorskip("tensorflow_model_optimization")
    from keras_mobilenets.finetune import build_classifier
    from keras_mobilenets.quantization import quantize_model

    model = build_classifier(3, "MobileNetV3Small", image_size=32, weights=None, alpha=0.35,
                             minimalistic=True)
    plain = distribute._batch_norms(quantize_model(model))
    assert plain and not any(layer.synchronized for layer in plain)
    names = [layer.name for layer in batch_norm_layers(model)]
    model = distribute.synchronize_batch_norm(model, names=names[:2])
    assert [layer.synchronized for layer in batch_norm_layers(model)][:3] == [True, True, False]
    qat = quantize_model(model)
    norms = distribute._batch_norms(qat)
    assert [layer.name for layer in norms] == names
    assert [layer.synchronized for layer in norms] == [True, True] + [False] * (len(names) - 2)
    assert not any(layer.fused for layer in norms[:2])
    # A QAT model (e.g. loaded from a file) is synchronized the same way, into a copy with
    # the same weights and outputs.
    synchronized = distribute.synchronize_batch_norm(qat)
    norms = distribute._batch_norms(synchronized)
    assert len(norms) == len(names)
    assert all(layer.synchronized and not layer.fused for layer in norms)
    batch = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(synchronized(batch, training=False).numpy(),
                               qat(batch, training=False).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"`names` has no BatchNormalization layer .*'conv'"):
        distribute.synchronize_batch_norm(model, names=["conv"])


def test_synchronize_batch_norm_refuses_what_is_no_model():
    pytest.importorskip("tensorflow_model_optimization")
    with pytest.raises(ValueError, match="expects a Keras 3 model or a tf_keras QAT model, "
                                         "got list"):
        distribute.synchronize_batch_norm([1, 2])
