"""Quantization-aware training of a trained Keras model, then an int8 TFLite file run with LiteRT.

Takes a float classifier (e.g. ``keras_mobilenets_runs/finetune/model.keras`` written by
``keras-mobilenets finetune``) and its folder of class sub-folders, and goes through
``keras_mobilenets.quantization`` and ``keras_mobilenets.export`` step by step:

1. ``quantize_model(model, calibration_data=...)``: a tfmot QAT copy (tf_keras) with the
   same weights and quantization ranges set from training images;
2. QAT fine-tuning at a low learning rate, ``save_qat_model`` / ``load_qat_model`` (.h5);
3. ``to_tflite(qat, quantization="int8")``: a full-integer file; ``op_report`` shows every
   kernel in int8 and no HARD_SWISH left (rewritten into ops XNNPACK runs in int8);
4. post-training int8 of the float model as a baseline (skipped in smoke mode);
5. accuracy, agreement, size and latency of each file with LiteRT.

Usage::

    python examples/qat_to_tflite.py DATA_DIR --model keras_mobilenets_runs/finetune/model.keras
    python examples/qat_to_tflite.py      # first fine-tunes MobileNetV3Small on shapes data
    KERAS_MOBILENETS_SMOKE=1 python examples/qat_to_tflite.py   # tiny sizes, < 40 s
"""

import argparse
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
    parser.add_argument("--model", default=None,
                        help="a trained float .keras classifier (default: fine-tune one)")
    parser.add_argument("--qat-epochs", type=int, default=1, help="(default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=1e-5,
                        help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8 if SMOKE else 32,
                        help="(default: %(default)s)")
    parser.add_argument("--output-dir",
                        default=os.path.join("keras_mobilenets_runs", "qat_to_tflite"),
                        help="where the files go (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.model is not None and args.data_dir is None:
        parser.error("--model needs the DATA_DIR it was trained on")
    return args


def float_model(args):
    """The float classifier and its data folder: loaded, or fine-tuned here first."""
    import keras

    from keras_mobilenets import finetune, quiet

    if args.model is not None:
        return keras.saving.load_model(args.model), args.data_dir
    print("No --model: fine-tuning MobileNetV3Small on the shapes data first.")
    config = finetune.FineTuneConfig(
        **(dict(weights=None, image_size=32, batch_size=8, epochs=1, fine_tune_epochs=0,
                backbone_kwargs={"alpha": 0.35, "minimalistic": True}, optimizer="sgd",
                calibration_images=16)
           if SMOKE else dict(weights=None, image_size=96, epochs=2, fine_tune_epochs=4)),
    )
    folder = os.path.join(args.output_dir, "float")
    result = finetune.run_finetune(None, folder, config, shapes_images=40 if SMOKE else 2000,
                                   verbose=quiet.progress_verbosity())
    return result.model, os.path.join(folder, "shapes_images")


def main(argv=None):
    args = parse_arguments(argv)
    from keras_mobilenets import export, finetune, quantization, quiet  # before keras
    from keras_mobilenets.export import compare

    os.makedirs(args.output_dir, exist_ok=True)
    model, data_dir = float_model(args)
    image_size = model.input_shape[1]
    train, val, _ = finetune.image_folder_datasets(data_dir, image_size=image_size,
                                                   batch_size=args.batch_size)
    calibration = finetune.take_images(train, 16 if SMOKE else 256)
    x_val, y_val = finetune.dataset_arrays(val)

    print("[1/5] quantize_model: QAT copy, ranges calibrated on "
          f"{len(calibration)} training images")
    qat = quantization.quantize_model(model, calibration_data=calibration)

    print(f"[2/5] QAT fine-tuning for {args.qat_epochs} epoch(s); .h5 round trip")
    finetune.fit_phase(qat, train, val, epochs=args.qat_epochs,
                       learning_rate=args.learning_rate, name="qat",
                       verbose=quiet.progress_verbosity())
    path = os.path.join(args.output_dir, "qat_model.h5")
    quantization.save_qat_model(qat, path)
    qat = quantization.load_qat_model(path)

    print("[3/5] int8 TFLite from the QAT model"
          + ("" if SMOKE else ", and float32 and post-training int8 for comparison"))
    rows, files = finetune.compare_models(
        model, x_val, y_val, qat_model=qat,
        int8_path=os.path.join(args.output_dir, "model_int8_qat.tflite"),
        float32_path=None if SMOKE else os.path.join(args.output_dir, "model_float32.tflite"),
        ptq_path=None if SMOKE else os.path.join(args.output_dir, "model_int8_ptq.tflite"),
        representative_data=None if SMOKE else calibration,
        batch_size=args.batch_size, latency_runs=5 if SMOKE else 100,
    )
    print(export.op_report(files["tflite_int8"]))
    kernels = export.op_tensor_types(files["tflite_int8"])
    assert all(row["input"] == row["output"] == "INT8" for row in kernels), kernels
    print("[4/5] post-training int8 of the float model (baseline): "
          + ("skipped in smoke mode" if SMOKE else files["tflite_int8_ptq"]))

    print(f"[5/5] LiteRT on {len(x_val)} held-out images ('agreement': top-1 agreement with "
          "the Keras model each file was made from):")
    print(compare.format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
