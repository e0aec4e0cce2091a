"""Grouped 1x1 convolution on CPU: formulations, and ShuffleNet V1 training steps.

Part 1 times forward + backward of one grouped pointwise convolution (ShuffleNet V1 shapes
at batch 16, 160x160 input) written six ways, all with the same ``(1, 1, in // g, out)``
kernel, and checks each against the first:

- ``keras_conv2d``: ``keras.ops.conv`` as ``keras.layers.Conv2D(groups=g)`` calls it (on
  TensorFlow it compiles grouped convolutions with XLA);
- ``native``: ``tf.nn.convolution`` (TensorFlow's grouped kernel; the package's grouped
  ``Conv2D`` where it has a CPU gradient, i.e. with oneDNN on; "no gradient" otherwise);
- ``split_conv``: split the channels, one 1x1 convolution per group, concat;
- ``split_matmul``: the same with one matmul per group (the package's grouped ``Conv2D``
  for 1x1 kernels where the native kernel has no CPU gradient);
- ``einsum``: ``nhwgc,cgo->nhwgo`` on the grouped view;
- ``block_diagonal``: one dense 1x1 convolution with a block-diagonal kernel (g x MACs).

Part 2 times training steps of ShuffleNet 1.0x with g = 1, 3, 8 (equal multiply-adds)
through ``fit`` with ``compile()``'s defaults (SGD, batch 16, 160x160; an epoch of 10 steps
per model and round), the three models in turn, and prints g = 3 / g = 1 and g = 8 / g = 1
per round (median and spread), once with TensorFlow's oneDNN kernels off and once on (``TF_ENABLE_ONEDNN_OPTS=0`` / ``=1``, a child
process each; ``--onednn current`` times this process only).

Part 3 (``--profile``) says where a training step's time goes: TensorFlow's profiler over
three steps of ShuffleNet 1.0x at g = 1, 3, 8, op time summed by op type and by group
(convolutions and their gradients; batch normalization in training: the fused kernels of
``layers.batch_norm.BatchNormalization`` and the op types Keras 3's own layer runs; the
rest), then forward + backward of Keras' ``BatchNormalization`` against TensorFlow's fused
batch-norm kernel at ShuffleNet shapes.

Usage:
    python benchmarks/grouped_conv.py [--repeats 5] [--rounds 7] [--steps 10] [--skip-layers] [--skip-models]
    python benchmarks/grouped_conv.py --skip-layers --skip-models --profile
"""

import argparse
import collections
import glob
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_mobilenets import ShuffleNet  # noqa: E402
from keras_mobilenets.layers.grouped_conv import grouped_kernel  # noqa: E402


def keras_conv2d(x, k, g):
    return keras.ops.conv(x, k, 1, "valid")


def native(x, k, g):
    return tf.nn.convolution(x, k, 1, "VALID")


def split_conv(x, k, g):
    pairs = zip(tf.split(x, g, axis=-1), tf.split(k, g, axis=-1))
    return tf.concat([tf.nn.convolution(a, b, 1, "VALID") for a, b in pairs], -1)


def split_matmul(x, k, g):
    shape = tf.shape(x)
    flat = tf.reshape(x, (-1, x.shape[-1]))
    pairs = zip(tf.split(flat, g, axis=-1), tf.split(k[0, 0], g, axis=-1))
    y = tf.concat([tf.matmul(a, b) for a, b in pairs], -1)
    return tf.reshape(y, (shape[0], shape[1], shape[2], k.shape[-1]))


def einsum(x, k, g):
    shape, cin, cout = tf.shape(x), x.shape[-1], k.shape[-1]
    grouped = tf.reshape(x, (shape[0], shape[1], shape[2], g, cin // g))
    y = tf.einsum("nhwgc,cgo->nhwgo", grouped, tf.reshape(k, (cin // g, g, cout // g)))
    return tf.reshape(y, (shape[0], shape[1], shape[2], cout))


def block_diagonal(x, k, g):
    cin, group_in = x.shape[-1], x.shape[-1] // g
    blocks = tf.split(k[0, 0], g, axis=-1)
    dense = tf.concat([tf.pad(b, ((i * group_in, cin - (i + 1) * group_in), (0, 0)))
                       for i, b in enumerate(blocks)], -1)
    return tf.nn.convolution(x, dense[None, None], 1, "VALID")


FORMULATIONS = (keras_conv2d, native, split_conv, split_matmul, einsum, block_diagonal)
# (batch, side, in, out, groups): ShuffleNet 1.0x at 160x160, stages 2-4 (g = 3 and 8).
LAYERS = ((16, 20, 240, 60, 3), (16, 10, 120, 480, 3), (16, 5, 960, 240, 3),
          (16, 20, 384, 96, 8), (16, 10, 192, 768, 8), (16, 5, 1536, 384, 8))


def _median_ms(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def time_layers(repeats):
    names = [f.__name__ for f in FORMULATIONS]
    print("Forward + backward of one grouped 1x1 convolution, median ms (max |error| vs the "
          "first column, relative)")
    print(f"{'batch, side, in, out, g':26s} " + " ".join(f"{n:>15s}" for n in names))
    rng = np.random.default_rng(0)
    for batch, side, cin, cout, groups in LAYERS:
        x = tf.constant(rng.normal(size=(batch, side, side, cin)).astype("float32"))
        kernel = tf.Variable(rng.normal(size=(1, 1, cin // groups, cout)).astype("float32"))
        cells, reference = [], None
        for formulation in FORMULATIONS:
            @tf.function
            def step(x, formulation=formulation):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = formulation(x, kernel, groups)
                    loss = tf.reduce_sum(y * y)
                return [y, *tape.gradient(loss, [x, kernel])]

            try:
                values = [v.numpy() for v in step(x)]
            except tf.errors.InvalidArgumentError:  # the native kernel without oneDNN
                cells.append("no gradient")
                continue
            reference = values if reference is None else reference
            error = max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(values, reference))
            ms = _median_ms(lambda: [v.numpy() for v in step(x)], repeats)
            cells.append(f"{ms:7.1f} ({error:.0e})")
        label = f"{batch}, {side}, {cin}, {cout}, {groups}"
        print(f"{label:26s} " + " ".join(f"{c:>15s}" for c in cells), flush=True)


def train_step_ms(model, repeats, batch=16, size=160):
    """Median milliseconds of ``train_on_batch`` (SGD) after one untimed step."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, 10, batch)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    model.train_on_batch(images, labels)
    return _median_ms(lambda: model.train_on_batch(images, labels), repeats)


def fit_step_ms(model, images, labels, steps):
    """Milliseconds per step of one ``fit`` epoch of ``steps`` batches."""
    start = time.perf_counter()
    model.fit(images, labels, batch_size=len(images) // steps, epochs=1, verbose=0,
              shuffle=False)
    return (time.perf_counter() - start) * 1000.0 / steps


def time_models(rounds, groups=(1, 3, 8), batch=16, size=160, steps=10):
    """ShuffleNet 1.0x training steps through ``fit``, g = 1, 3, 8 in turn.

    Each model is compiled with ``compile()``'s defaults (only the optimizer and loss
    named) and trains one epoch of ``steps`` batches per round; every round times each
    ``groups`` once, so load from other work slows all alike. Prints each model's median
    step and the per-round ratio to g = 1 (median, min-max over rounds).

    Returns:
        ``{groups: [ratio to g = 1 of each round]}``.
    """
    print(f"\nShuffleNet 1.0x training step through fit (SGD, batch {batch}, {size}x{size}, "
          f"compile() defaults), {rounds} rounds in turn; oneDNN "
          f"{'on' if onednn_on() else 'off'}, grouped kernel: {grouped_kernel()}")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch * steps, size, size, 3)).astype("float32")
    labels = rng.integers(0, 10, batch * steps)
    models = {}
    for g in groups:
        models[g] = ShuffleNet(groups=g, scale=1.0, input_shape=(size, size, 3), classes=10)
        models[g].compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
        fit_step_ms(models[g], images, labels, steps)  # traces the step
    times = {g: [] for g in groups}
    for _ in range(rounds):
        for g in groups:
            times[g].append(fit_step_ms(models[g], images, labels, steps))
    ratios = {g: [t / base for t, base in zip(times[g], times[groups[0]])] for g in groups}
    print(f"{'groups':>6s} {'step ms':>8s} {'ratio to g=1 (min-max)':>24s}")
    for g in groups:
        spread = f"{np.median(ratios[g]):.2f} ({min(ratios[g]):.2f}-{max(ratios[g]):.2f})"
        print(f"{g:6d} {np.median(times[g]):8.0f} {spread:>24s}", flush=True)
    return ratios


def onednn_on():
    """Whether this process's TensorFlow runs its oneDNN kernels."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def time_models_both_onednn_settings(rounds, steps):
    """``time_models`` in a child process per ``TF_ENABLE_ONEDNN_OPTS`` setting (0, 1)."""
    for setting in ("0", "1"):
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=setting)
        subprocess.run([sys.executable, __file__, "--skip-layers", "--rounds", str(rounds),
                        "--steps", str(steps), "--onednn", "current"], env=env, check=True)


# Op types of Keras 3's BatchNormalization in training (moments, normalisation, gradients);
# the package's layer runs TensorFlow's fused kernels instead (names with "FusedBatchNorm").
BATCH_NORM_OPS = ("Mul", "Mean", "SquaredDifference", "Sum", "AddN", "Tile", "Sub")


def op_times_ms(run, steps=3):
    """Milliseconds per step of each TensorFlow op type while ``run()`` runs ``steps`` times."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    folder = tempfile.mkdtemp()
    tf.profiler.experimental.start(folder)
    for _ in range(steps):
        run()
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)[0],
              "rb") as f:
        space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in space.planes:
        names = {key: value.name for key, value in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name == "python":
                continue
            for event in line.events:
                op = names.get(event.metadata_id, "?").split(":")[-1]
                times[op.replace("_MklNative", "").replace("_Mkl", "")] += (
                    event.duration_ps / 1e9 / steps)
    return times


def profile_models(repeats):
    print("\nShuffleNet 1.0x training step, op time by type (TensorFlow profiler, ms per step)")
    print(f"{'groups':>6s} {'step':>6s} {'convolutions':>12s} {'batch norm':>10s} "
          f"{'other ops':>9s}  largest op types")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(16, 160, 160, 3)).astype("float32")
    labels = rng.integers(0, 10, 16)
    for groups in (1, 3, 8):
        model = ShuffleNet(groups=groups, scale=1.0, input_shape=(160, 160, 3), classes=10)
        step = train_step_ms(model, repeats)
        times = op_times_ms(lambda: model.train_on_batch(images, labels))
        times.pop("Process", None)  # the whole step, not an op
        conv = sum(v for k, v in times.items() if "Conv2D" in k or "Conv2d" in k)
        norm = sum(v for k, v in times.items() if k in BATCH_NORM_OPS or "FusedBatchNorm" in k)
        other = sum(times.values()) - conv - norm
        largest = ", ".join(f"{k} {v:.0f}" for k, v in times.most_common(5))
        print(f"{groups:6d} {step:6.0f} {conv:12.0f} {norm:10.0f} {other:9.0f}  {largest}",
              flush=True)
        keras.backend.clear_session()


def profile_batch_norm(repeats):
    print("\nBatch norm in training, forward + backward, median ms")
    print(f"{'shape':>20s} {'keras':>7s} {'fused':>7s}")
    for shape in ((16, 40, 40, 96), (16, 20, 20, 144), (16, 20, 20, 384), (16, 10, 10, 768)):
        x = tf.constant(np.random.default_rng(0).normal(size=shape).astype("float32"))
        layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
        layer.build(shape)
        gamma, beta = tf.Variable(tf.ones(shape[-1])), tf.Variable(tf.zeros(shape[-1]))

        def keras_norm(x):
            return layer(x, training=True), [layer.gamma, layer.beta]

        def fused_norm(x):
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=1e-5,
                                                       is_training=True)
            return y, [gamma, beta]

        cells = []
        for norm in (keras_norm, fused_norm):
            @tf.function
            def step(x, norm=norm):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y, variables = norm(x)
                    loss = tf.reduce_sum(y * y)
                return tape.gradient(loss, [x, *variables])

            step(x)
            cells.append(_median_ms(lambda: [v.numpy() for v in step(x)], repeats))
        print(f"{str(shape):>20s} {cells[0]:7.1f} {cells[1]:7.1f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7,
                        help="rounds of the fit timing (each times every groups once)")
    parser.add_argument("--steps", type=int, default=10,
                        help="training steps (batches) in each model's fit epoch of a round")
    parser.add_argument("--onednn", choices=("both", "current"), default="both",
                        help="time the models with TF_ENABLE_ONEDNN_OPTS=0 and =1 (each in a "
                             "child process), or in this process as it is")
    parser.add_argument("--skip-layers", action="store_true")
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="op time by type of the training steps; batch-norm kernels")
    args = parser.parse_args()
    print(f"oneDNN {'on' if onednn_on() else 'off'}, grouped kernel: {grouped_kernel()}, "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}", flush=True)
    if not args.skip_layers:
        time_layers(args.repeats)
    if not args.skip_models:
        if args.onednn == "both":
            time_models_both_onednn_settings(args.rounds, args.steps)
        else:
            time_models(args.rounds, steps=args.steps)
    if args.profile:
        profile_models(args.repeats)
        profile_batch_norm(max(args.repeats, 20))


if __name__ == "__main__":
    main()
