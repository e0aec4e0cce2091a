"""Fine-tune on several devices with TensorFlow's tf.distribute strategies.

The package has no training engine of its own: ``keras_mobilenets.finetune`` builds and
compiles its models inside ``strategy.scope()`` and Keras' ``fit`` does the rest (each
global batch is split between the replicas, gradients are all-reduced). This script runs
the fine-tuning workflow under the strategy you pick:

* ``--strategy auto`` (default): a TPU when one is attached (Colab's TPU runtime),
  ``MirroredStrategy`` over all GPUs when there are several, else one device;
* ``--strategy mirrored``: all GPUs of this machine (``--cpus N`` splits the CPU into N
  logical devices instead: a way to try data parallelism without GPUs);
* ``--strategy tpu``: ``TPUStrategy`` (Colab: Runtime > Change runtime type > TPU);
* ``--strategy multiworker``: ``MultiWorkerMirroredStrategy``. Start the same command on
  every machine, each with its own ``TF_CONFIG``, for example on the first of two::

      TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                  "task": {"type": "worker", "index": 0}}' \\
          python examples/multi_device_training.py DATA_DIR --strategy multiworker \\
          --output-dir run_worker0

  Every worker reads the whole DATA_DIR (the batches are sharded between them) and needs
  its own ``--output-dir``; worker 0's is the one to keep. Keras 3 cannot ``fit`` under
  several workers (keras-team/keras#20585), so the phases train tf_keras twins of the model
  there, without per-epoch checkpoints (see docs/distributed.md).

Keep the global batch size when adding replicas to train as on one device (per-replica
batch = global batch / replicas), or scale batch and learning rate together. With small
per-replica batches and batch norms that train, ``--sync-batch-norm`` normalizes with the
statistics of the global batch.

Usage::

    python examples/multi_device_training.py [DATA_DIR] [--strategy mirrored] [--epochs 3]
    KERAS_MOBILENETS_SMOKE=1 python examples/multi_device_training.py  # 2 logical CPUs, tiny
"""

import argparse
import logging
import os
import sys

SMOKE = os.environ.get("KERAS_MOBILENETS_SMOKE") == "1"

# TensorFlow's own log lines off (TF_CPP_MIN_LOG_LEVEL=0 in the environment shows them): the
# level must be set before TensorFlow is imported, and keras_mobilenets, imported first,
# drops the lines TensorFlow prints before it reads it (see keras_mobilenets.quiet).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", nargs="?", default=None,
                        help="folder of class sub-folders (default: the shapes data)")
    parser.add_argument("--strategy", default="auto",
                        choices=("auto", "default", "mirrored", "tpu", "multiworker"))
    parser.add_argument("--cpus", type=int, default=2 if SMOKE else 0,
                        help="with --strategy mirrored on a machine without GPUs: split the "
                             "CPU into this many logical devices (smoke mode: 2)")
    parser.add_argument("--epochs", type=int, default=1 if SMOKE else 3,
                        help="(default: %(default)s)")
    parser.add_argument("--fine-tune-epochs", type=int, default=0 if SMOKE else 3,
                        help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8 if SMOKE else 64,
                        help="global batch size (default: %(default)s)")
    parser.add_argument("--sync-batch-norm", action="store_true")
    parser.add_argument("--output-dir",
                        default=os.path.join("keras_mobilenets_runs", "multi_device_training"),
                        help="where the files go (default: %(default)s)")
    args = parser.parse_args(argv)
    if SMOKE and args.strategy == "auto":
        args.strategy = "mirrored"
    if args.cpus and args.strategy != "mirrored":
        parser.error("--cpus applies to --strategy mirrored only")
    return args


def main(argv=None):
    args = parse_arguments(argv)
    from keras_mobilenets import quiet  # first: it imports TensorFlow

    import tensorflow as tf

    devices = None
    if args.cpus > 1:
        # Logical devices must be configured before TensorFlow initializes its runtime.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpus)
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]

    from keras_mobilenets import finetune
    from keras_mobilenets.distribute import strategy_from_name

    logging.basicConfig(format="%(message)s")
    logging.getLogger("keras_mobilenets").setLevel(logging.INFO)  # the workflow's steps
    strategy = strategy_from_name(args.strategy, devices=devices)
    replicas = strategy.num_replicas_in_sync
    print(f"{type(strategy).__name__} with {replicas} replica(s): global batch "
          f"{args.batch_size}, {args.batch_size / replicas:g} images per replica")

    config = finetune.FineTuneConfig(
        epochs=args.epochs, fine_tune_epochs=args.fine_tune_epochs,
        batch_size=args.batch_size, sync_batch_norm=args.sync_batch_norm or (
            SMOKE and replicas > 1),
        **(dict(weights=None, image_size=32, backbone_kwargs={"alpha": 0.35,
                                                              "minimalistic": True},
                optimizer="sgd", calibration_images=16) if SMOKE else {}),
    )
    result = finetune.run_finetune(
        args.data_dir, output_dir=args.output_dir, config=config, strategy=strategy,
        shapes_images=40 if SMOKE else 1000, verbose=quiet.progress_verbosity(),
    )
    for name, phase in result.phases.items():
        if phase.history:
            print(f"{name}: val accuracy per epoch {phase.history.get('val_accuracy')}")
    print(result.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
