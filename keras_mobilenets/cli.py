"""The ``keras-mobilenets`` command line (also ``python -m keras_mobilenets``).

Commands:
    models   build every variant of the zoo and print parameters and multiply-adds
             side by side with the reference numbers.
    demo     the main job on the embedded default data (see ``demo --help``).
"""

import argparse
import os
import sys


def models_table(variants=None, input_size=224, progress=True):
    """Builds each zoo variant and returns the model table as text.

    Args:
        variants: Zoo variants to include (all by default).
        input_size: Square input size at which multiply-adds are counted.
        progress: Show a progress bar while building.

    Returns:
        The table, one line per variant.
    """
    import keras

    from keras_mobilenets import profiling, zoo

    variants = zoo.VARIANTS if variants is None else variants
    header = (
        f"{'variant':34s} {'params':>10s} {'reference':>10s} {'trainable':>10s} "
        f"{'MACs(M)':>8s} {'ref MACs':>8s} {'top-1':>6s}"
    )
    lines = [header, "-" * len(header)]
    bar = keras.utils.Progbar(len(variants), verbose=1 if progress else 0)
    for variant in variants:
        model = variant.build(input_shape=(input_size, input_size, 3))
        report = profiling.profile(model)
        reference = f"{variant.params:,d}" if variant.params else "-"
        ref_macs = f"{variant.macs_millions:g}" if variant.macs_millions else "-"
        top1 = f"{variant.top1:g}" if variant.top1 else "-"
        lines.append(
            f"{variant.name:34s} {report.params:10,d} {reference:>10s} "
            f"{report.trainable_params:10,d} {report.macs / 1e6:8.1f} {ref_macs:>8s} {top1:>6s}"
        )
        bar.add(1)
        keras.backend.clear_session()
    return "\n".join(lines)


def _models(args):
    print(models_table(input_size=args.input_size))
    return 0


def _demo(args):
    print("keras_mobilenets demo: building every model of the zoo at 224x224.")
    print(models_table())
    return 0


def build_parser():
    """The argument parser of the ``keras-mobilenets`` command."""
    parser = argparse.ArgumentParser(
        prog="keras-mobilenets",
        description="MobileNet V1/V2/V3 and ShuffleNet for Keras 3: build, train, quantize, export.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models", help="print the model table (params, MACs)")
    models.add_argument("--input-size", type=int, default=224, help="square input size")
    models.set_defaults(run=_models)
    demo = commands.add_parser("demo", help="run the main job on the embedded default data")
    demo.set_defaults(run=_demo)
    return parser


def main(argv=None):
    """Entry point of the ``keras-mobilenets`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if getattr(args, "input_size", 32) < 32:
        build_parser().error(f"--input-size must be >= 32, got {args.input_size}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
