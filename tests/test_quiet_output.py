"""Quiet output: the command line shows its own lines, not TensorFlow's, LiteRT's or the
converter's native log lines, and no terminal escape codes when its output is not a terminal;
``--verbose`` or a ``TF_CPP_MIN_LOG_LEVEL`` the user set lets TensorFlow's lines through."""

import os
import re
import sys

import numpy as np
import pytest

from keras_mobilenets import cli, quiet
from tests import helpers

# Lines of TensorFlow, absl, the TFLite converter and LiteRT (not of this package).
NATIVE_LOG = re.compile(
    r"^[IWEF]\d{4} |cudart_stub|cpu_feature_guard|absl::InitializeLog|port\.cc|loader\.cc|"
    r"reader\.cc|flatbuffer_export|tf_tfl_flatbuffer_helpers|cuInit|fully_quantize|"
    r"TensorFlow Lite XNNPACK delegate",
    re.MULTILINE,
)
ESCAPES = ("\x1b", "\b", "\r")


def unsilenced_environment(**extra):
    """helpers.environment without TF_CPP_MIN_LOG_LEVEL (it sets one for the other tests):
    whatever is quiet here is quiet because of the package."""
    env = helpers.environment()
    env.pop(quiet.LEVEL_VARIABLE, None)
    return {**env, **extra}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("quiet") / "image.png"
    pixels = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def run_predict(image, cwd, *options, **env):
    """``python -m keras_mobilenets predict`` (random weights, 32x32), output captured."""
    process = helpers.run_python(
        ["-m", "keras_mobilenets", *options, "predict", image, "--weights", "none",
         "--image-size", "32"], cwd, env=unsilenced_environment(**env))
    output = process.stdout + process.stderr
    assert process.returncode == 0, output[-3000:]
    assert "(MobileNetV3Small, weights=none):" in process.stdout
    return output


@pytest.mark.slow
def test_the_command_shows_only_its_own_lines(image, tmp_path):
    # Imports TensorFlow and runs the model (the cuInit E line comes with the first op).
    output = run_predict(image, tmp_path)
    assert not NATIVE_LOG.search(output), output
    assert not any(code in output for code in ESCAPES), repr(output)
    assert len(output.strip().splitlines()) == 6, output  # the header and the top 5


@pytest.mark.slow
@pytest.mark.parametrize("options, env", [
    (["--verbose"], {}),
    ([], {quiet.LEVEL_VARIABLE: "0"}),  # the user's own value is kept
], ids=["verbose", "user_level_0"])
def test_verbose_or_the_users_level_lets_tensorflow_lines_through(image, tmp_path, options,
                                                                  env):
    output = run_predict(image, tmp_path, *options, **env)
    assert NATIVE_LOG.search(output), output


@pytest.mark.slow
@pytest.mark.end_to_end
def test_finetune_and_tflite_export_show_only_their_own_lines_and_plain_progress(tmp_path):
    pytest.importorskip("ai_edge_litert")
    process = helpers.run_python(
        ["-m", "keras_mobilenets", "finetune", "--weights", "none", "--minimalistic",
         "--alpha", "0.35", "--image-size", "32", "--batch-size", "8", "--shapes-images", "10",
         "--epochs", "1", "--fine-tune-epochs", "0", "--latency-runs", "1", "--optimizer",
         "sgd", "--export", "int8.tflite", "--output-dir", "run"],
        tmp_path, env=unsilenced_environment())
    output = process.stdout + process.stderr
    assert process.returncode == 0, output[-3000:]
    assert not NATIVE_LOG.search(output), output
    assert not any(code in output for code in ESCAPES), repr(output)
    # Keras' progress: one plain line per epoch (verbose=2), the steps and the table.
    assert re.search(r"^1/1 - \d+s - .*accuracy: ", process.stdout, re.MULTILINE), output
    assert "TFLite int8 (post-training)" in process.stdout
    assert os.path.getsize(tmp_path / "run" / "int8.tflite") > 0


@pytest.mark.parametrize("arguments", [
    ["--verbose", "predict", "x.png"], ["predict", "x.png", "--verbose"],
    ["finetune", "--verbose", "--epochs", "1"], ["demo", "--verbose"],
])
def test_verbose_goes_before_or_after_the_command(arguments):
    assert cli.build_parser().parse_args(arguments).verbose is True
    assert cli.build_parser().parse_args(
        [a for a in arguments if a != "--verbose"]).verbose is False


def test_verbose_is_documented_in_help(capsys):
    for arguments in (["--help"], ["predict", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(arguments)
        assert "--verbose" in capsys.readouterr().out


SCRIPT = "/venv/bin/keras-mobilenets"


@pytest.mark.parametrize("argv, orig_argv, expected", [
    ([SCRIPT, "demo"], [], ["demo"]),
    ([SCRIPT + ".exe", "--verbose"], [], ["--verbose"]),
    (["-m", "predict", "x"], ["python", "-m", "keras_mobilenets", "predict", "x"],
     ["predict", "x"]),
    (["-m", "demo"], ["python", "-X", "utf8", "-mkeras_mobilenets.cli", "demo"], ["demo"]),
    (["-m", "-q"], ["python", "-m", "pytest", "-q"], None),  # pytest importing the package
    (["train.py", "--verbose"], ["python", "train.py", "--verbose"], None),
    ([], [], None),
])
def test_the_command_is_recognised_while_the_package_is_imported(argv, orig_argv, expected):
    assert quiet.command_line_arguments(argv, orig_argv) == expected


@pytest.mark.parametrize("arguments, environ, expected", [
    (["demo"], {}, quiet.QUIET_LEVEL),
    (["--verbose", "demo"], {}, None),
    (["demo", "--verbose"], {}, None),
    (["demo", "--", "--verbose"], {}, quiet.QUIET_LEVEL),  # after "--": not the option
    (["demo"], {quiet.LEVEL_VARIABLE: "0"}, "0"),  # the user's value is never changed
    (["demo"], {quiet.LEVEL_VARIABLE: "1"}, "1"),
])
def test_the_command_sets_the_level_unless_verbose_or_set(arguments, environ, expected):
    quiet.quiet_command_line([SCRIPT, *arguments], [], environ)
    assert environ.get(quiet.LEVEL_VARIABLE) == expected


def test_other_programs_leave_the_environment_alone():
    environ = {}
    assert not quiet.quiet_command_line(["train.py"], ["python", "train.py"], environ)
    assert environ == {}


ABSL_INFO = b"I0000 00:00:1796625653.474698   17841 cudart_stub.cc:31] Could not find cuda\n"
ABSL_WARNING = b"W0000 00:00:1796625699.622215   18059 tf_tfl_flatbuffer_helpers.cc:364] Ignored\n"
ABSL_ERROR = b"E0000 00:00:1796625699.240015   18059 cuda_platform.cc:52] failed call to cuInit\n"
PREAMBLE = (b"WARNING: All log messages before absl::InitializeLog() is called are written to "
            b"STDERR\n")
XNNPACK = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
CALIBRATION = b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8\n"
OURS = (b"WARNING: 3 of 19 HARD_SWISH ops leave XNNPACK\n", b"UserWarning: ours\n",
        b"Traceback (most recent call last):\n", b"ERROR: LiteRT failed to allocate\n")


@pytest.mark.parametrize("level, dropped", [
    (0, ()),
    (1, (ABSL_INFO, PREAMBLE, XNNPACK, CALIBRATION)),
    (2, (ABSL_INFO, ABSL_WARNING, PREAMBLE, XNNPACK, CALIBRATION)),
    (3, (ABSL_INFO, ABSL_WARNING, ABSL_ERROR, PREAMBLE, XNNPACK, CALIBRATION)),
])
def test_lines_below_the_level_are_dropped_and_others_kept(level, dropped):
    for line in (ABSL_INFO, ABSL_WARNING, ABSL_ERROR, PREAMBLE, XNNPACK, CALIBRATION, *OURS):
        assert quiet.kept_line(line, level) is (line not in dropped), line


# In its own process: under pytest, sys.stderr does not write to file descriptor 2.
FILTER_SCRIPT = """
import importlib.util, os, sys, warnings
spec = importlib.util.spec_from_file_location("quiet", sys.argv[1])
quiet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quiet)
with quiet.native_log_filter():
    os.write(2, sys.argv[2].encode())
    print("Python's own line", file=sys.stderr)
    warnings.warn("a warning of the package")
    os.write(2, sys.argv[3].encode())
print("done")
"""


def test_the_filter_drops_native_lines_and_keeps_the_rest_in_order(tmp_path):
    process = helpers.run_python(
        ["-c", FILTER_SCRIPT, quiet.__file__, (PREAMBLE + ABSL_INFO + OURS[0] + XNNPACK).decode(),
         (CALIBRATION + OURS[3]).decode()], tmp_path, env=unsilenced_environment(
            **{quiet.LEVEL_VARIABLE: "3"}))
    assert process.returncode == 0, process.stderr
    assert process.stdout == "done\n"
    lines = process.stderr.splitlines()
    assert lines[0] == OURS[0].decode().strip()
    assert lines[1] == "Python's own line"
    assert lines[2].endswith("UserWarning: a warning of the package")
    assert lines[-1] == OURS[3].decode().strip()
    assert not NATIVE_LOG.search(process.stderr), process.stderr


def test_the_filter_leaves_the_output_alone_at_level_0(capfd):
    with quiet.native_log_filter({}):
        os.write(2, ABSL_INFO + XNNPACK)
    assert capfd.readouterr().err == (ABSL_INFO + XNNPACK).decode()


def test_the_filter_writes_the_kept_lines_when_the_block_raises(capfd):
    with pytest.raises(ValueError):
        with quiet.native_log_filter({quiet.LEVEL_VARIABLE: "2"}):
            os.write(2, XNNPACK + OURS[2])
            raise ValueError("stop")
    assert capfd.readouterr().err == OURS[2].decode()


@pytest.mark.parametrize("level, shown", [("0", True), ("1", False), ("3", False)])
def test_post_training_calibration_line_follows_the_level(capfd, monkeypatch, level, shown):
    # The converter prints it on every calibrated conversion, whatever TensorFlow's level:
    # only the package's filter around the conversion can drop it.
    import keras

    from keras_mobilenets import export

    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(4, 3)(inputs)))
    images = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    monkeypatch.setenv(quiet.LEVEL_VARIABLE, level)
    capfd.readouterr()
    export.to_tflite(keras.Model(inputs, outputs), quantization="int8",
                     representative_data=images)
    assert ("fully_quantize" in capfd.readouterr().err) is shown


class _Stream:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_bars_only_on_a_terminal():
    assert quiet.progress_verbosity(_Stream(True)) == 1
    assert quiet.progress_verbosity(_Stream(False)) == 2
    assert quiet.progress_verbosity(object()) == 2
