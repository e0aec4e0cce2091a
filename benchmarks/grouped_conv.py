"""Grouped 1x1 convolution on CPU: formulations, and ShuffleNet V1 training steps.

Part 1 times forward + backward of one grouped pointwise convolution (ShuffleNet V1 shapes
at batch 16, 160x160 input) written six ways, all with the same ``(1, 1, in // g, out)``
kernel, and checks each against the first:

- ``keras_conv2d``: ``keras.ops.conv`` as ``keras.layers.Conv2D(groups=g)`` calls it (on
  TensorFlow it compiles grouped convolutions with XLA);
- ``native``: ``tf.nn.convolution`` (TensorFlow's grouped kernel; ``GroupedConv2D``);
- ``split_conv``: split the channels, one 1x1 convolution per group, concat;
- ``split_matmul``: the same with one matmul per group;
- ``einsum``: ``nhwgc,cgo->nhwgo`` on the grouped view;
- ``block_diagonal``: one dense 1x1 convolution with a block-diagonal kernel (g x MACs).

Part 2 times ``train_on_batch`` (SGD, batch 16, 160x160) of ShuffleNet 1.0x with g = 1, 3,
8 with today's ``GroupedConv2D`` layers and with them swapped back to ``Conv2D``.

Part 3 (``--profile``) says where a training step's time goes: TensorFlow's profiler over
three steps of ShuffleNet 1.0x at g = 1, 3, 8, op time summed by op type and by group
(convolutions and their gradients; batch normalization in training: the fused kernels of
``layers.batch_norm.BatchNormalization`` and the op types Keras 3's own layer runs; the
rest), then forward + backward of Keras' ``BatchNormalization`` against TensorFlow's fused
batch-norm kernel at ShuffleNet shapes.

Usage:
    python benchmarks/grouped_conv.py [--repeats 5] [--skip-layers] [--skip-models]
    python benchmarks/grouped_conv.py --skip-layers --skip-models --profile
"""

import argparse
import collections
import glob
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_mobilenets import ShuffleNet  # noqa: E402
from keras_mobilenets.layers.grouped_conv import Conv2D as GroupedConv2D  # noqa: E402


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

            values = [v.numpy() for v in step(x)]
            reference = values if reference is None else reference
            error = max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(values, reference))
            ms = _median_ms(lambda: [v.numpy() for v in step(x)], repeats)
            cells.append(f"{ms:7.1f} ({error:.0e})")
        label = f"{batch}, {side}, {cin}, {cout}, {groups}"
        print(f"{label:26s} " + " ".join(f"{c:>15s}" for c in cells), flush=True)


def as_conv2d(model):
    """``model`` with every GroupedConv2D swapped back to keras' Conv2D (same weights)."""
    def clone(layer):
        if isinstance(layer, GroupedConv2D):
            return keras.layers.Conv2D.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def train_step_ms(model, repeats, batch=16, size=160):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, 10, batch)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy",
                  jit_compile=False)
    model.train_on_batch(images, labels)
    return _median_ms(lambda: model.train_on_batch(images, labels), repeats)


def time_models(repeats):
    print("\nShuffleNet 1.0x train_on_batch (SGD, batch 16, 160x160), median ms")
    print(f"{'groups':>6s} {'ours (native kernel)':>20s} {'keras Conv2D (XLA)':>18s}")
    for groups in (1, 3, 8):
        model = ShuffleNet(groups=groups, scale=1.0, input_shape=(160, 160, 3), classes=10)
        ours = train_step_ms(model, repeats)
        before = train_step_ms(as_conv2d(model), repeats) if groups > 1 else ours
        print(f"{groups:6d} {ours:20.0f} {before:18.0f}", flush=True)
        keras.backend.clear_session()


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
    parser.add_argument("--skip-layers", action="store_true")
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="op time by type of the training steps; batch-norm kernels")
    args = parser.parse_args()
    if not args.skip_layers:
        time_layers(args.repeats)
    if not args.skip_models:
        time_models(args.repeats)
    if args.profile:
        profile_models(args.repeats)
        profile_batch_norm(max(args.repeats, 20))


if __name__ == "__main__":
    main()
