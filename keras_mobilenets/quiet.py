"""Quiet programs: the command line and the examples show their own lines, not TensorFlow's.

TensorFlow, its TFLite converter and LiteRT write log lines of their own C++ code to the
standard error (file descriptor 2), which Python's ``logging`` and ``warnings`` do not
control. What silences each, measured with TensorFlow 2.21, Keras 3.15 and ai-edge-litert
2.3 on Linux x86 without a GPU:

- ``TF_CPP_MIN_LOG_LEVEL``, read by TensorFlow's C++ logging at its first message (setting
  it after ``import tensorflow`` changes nothing): 1 hides the I lines (cpu_feature_guard.cc
  and, during a TFLite conversion, reader.cc, loader.cc, mlir_graph_optimization_pass.cc,
  dump_mlir_util.cc, flatbuffer_export.cc's op count); 2 also the W lines
  (tf_tfl_flatbuffer_helpers.cc "Ignored output_format", flatbuffer_export.cc "Skipping
  runtime version metadata"); 3 also the E line "cuda_platform.cc:52] failed call to
  cuInit ... (303)", printed when the first op runs on a machine without a GPU.
- Not honoured by the lines printed while ``import tensorflow`` loads its libraries (before
  TensorFlow reads the variable): absl's "WARNING: All log messages before
  absl::InitializeLog() is called are written to STDERR" and "cudart_stub.cc:31] Could not
  find cuda drivers" (each twice, from two libraries) and, where oneDNN is on, "port.cc:153]
  oneDNN custom operations are on". GLOG_minloglevel, ABSL_MIN_LOG_LEVEL and
  CUDA_VISIBLE_DEVICES="" change none of them.
- Not TensorFlow's logging at all: the post-training calibration's "fully_quantize: 0,
  inference_type: 6, ..." and LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for
  CPU." (TFLite's own logger, whose threshold no environment variable or Python call sets).

So a program sets ``TF_CPP_MIN_LOG_LEVEL`` before TensorFlow is imported, and
:func:`native_log_filter` drops the remaining lines below that level where they are printed
(the package's import, a conversion with calibration, a LiteRT interpreter's creation). The
package imports TensorFlow when it is imported, so a program cannot call a function of it
before that import: the ``keras-mobilenets`` command is recognised on import
(:func:`quiet_command_line`), and the examples set the variable before importing the package.
A value of ``TF_CPP_MIN_LOG_LEVEL`` the user set is never changed. Without it (the library
used from the user's own code) nothing is dropped.

Keras 3's progress bars (``verbose=1``) write colour codes, backspaces and carriage returns
even when the output is a file or a pipe; ``verbose=2`` prints one plain line per epoch,
which :func:`progress_verbosity` picks when the output is not a terminal.

Example (a script, as the examples do):
    >>> import os
    >>> os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before keras_mobilenets
    >>> from keras_mobilenets import quiet  # imports TensorFlow: its start-up lines dropped
    >>> model.fit(data, epochs=3, verbose=quiet.progress_verbosity())
"""

import contextlib
import os
import re
import sys
import tempfile

#: The variable TensorFlow's C++ logging reads: 0 (all lines, the default) to 3.
LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
#: What a quiet program sets: I, W and E lines off (the cuInit E line reads as a failure).
QUIET_LEVEL = "3"
#: The command line's option that leaves TensorFlow's lines on.
VERBOSE_OPTION = "--verbose"
#: The console script's name and the modules ``python -m`` runs as the command.
COMMAND = "keras-mobilenets"
COMMAND_MODULES = ("keras_mobilenets", "keras_mobilenets.cli")

# absl's C++ prefix: severity, date (0000 before absl::InitializeLog), time, thread, file:line.
_ABSL_LINE = re.compile(rb"([IWEF])\d{4} [\d:.]+ +\d+ [^\s\]]+:\d+\] ")
_SEVERITIES = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}
# Informational lines TensorFlow, the converter and LiteRT print at any level.
_INFO_LINES = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"INFO: ",  # LiteRT's (TFLite's) logger; its WARNING and ERROR lines are kept
    b"fully_quantize: ",
)


def min_log_level(environ=None):
    """TensorFlow's C++ log level: ``TF_CPP_MIN_LOG_LEVEL`` as an int, 0 when unset or not
    an integer (as TensorFlow reads it).

    Args:
        environ: The environment (``os.environ`` by default).

    Returns:
        The level: 0 shows every line, 1 hides I lines, 2 also W, 3 also E.
    """
    environ = os.environ if environ is None else environ
    try:
        return int(environ.get(LEVEL_VARIABLE, "0"))
    except ValueError:
        return 0


def quiet_tensorflow(verbose=False, environ=None):
    """Sets ``TF_CPP_MIN_LOG_LEVEL`` to :data:`QUIET_LEVEL` unless ``verbose`` or already set.

    Call it before TensorFlow is imported: TensorFlow reads the variable once.

    Args:
        verbose: Leave TensorFlow's lines on (set nothing).
        environ: The environment to change (``os.environ`` by default).

    Returns:
        True if the variable was set here.
    """
    environ = os.environ if environ is None else environ
    if verbose or LEVEL_VARIABLE in environ:
        return False
    environ[LEVEL_VARIABLE] = QUIET_LEVEL
    return True


def command_line_arguments(argv=None, orig_argv=None):
    """The arguments given to the ``keras-mobilenets`` command if this process runs it.

    Recognises the console script (``sys.argv[0]`` is its path) and ``python -m
    keras_mobilenets`` while the package is imported (``sys.argv[0]`` is then ``"-m"``
    and ``sys.orig_argv`` names the module).

    Args:
        argv: ``sys.argv`` by default.
        orig_argv: ``sys.orig_argv`` by default.

    Returns:
        The arguments after the program (a list), or None if this is another program.
    """
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if not argv:
        return None
    program = os.path.basename(argv[0])
    if program in (COMMAND, COMMAND + ".exe", COMMAND + "-script.py"):
        return list(argv[1:])
    if argv[0] == "-m" and _module_run(orig_argv) in COMMAND_MODULES:
        return list(argv[1:])
    return None


def _module_run(orig_argv):
    """The module of ``python -m MODULE`` (or ``-mMODULE``) in ``orig_argv``, else None."""
    for index, argument in enumerate(orig_argv[1:], 1):
        if argument == "-m":
            return orig_argv[index + 1] if index + 1 < len(orig_argv) else None
        if argument.startswith("-m"):
            return argument[2:]
    return None


def quiet_command_line(argv=None, orig_argv=None, environ=None):
    """For the ``keras-mobilenets`` command without ``--verbose``: :func:`quiet_tensorflow`.

    The package's ``__init__`` calls it first, before anything imports TensorFlow; for any
    other program it does nothing.

    Returns:
        True if ``TF_CPP_MIN_LOG_LEVEL`` was set here.
    """
    arguments = command_line_arguments(argv, orig_argv)
    if arguments is None:
        return False
    if "--" in arguments:
        arguments = arguments[:arguments.index("--")]
    return quiet_tensorflow(verbose=VERBOSE_OPTION in arguments, environ=environ)


def kept_line(line, level):
    """Whether a line of native error output is shown at ``TF_CPP_MIN_LOG_LEVEL`` ``level``.

    Args:
        line: One line, as bytes.
        level: The level (:func:`min_log_level`).

    Returns:
        False for absl log lines below ``level`` and, from level 1, the informational lines
        printed regardless of the level; True for every other line.
    """
    match = _ABSL_LINE.match(line)
    if match:
        return _SEVERITIES[match.group(1)] >= level
    return level < 1 or not line.startswith(_INFO_LINES)


@contextlib.contextmanager
def native_log_filter(environ=None):
    """Drops the native log lines below ``TF_CPP_MIN_LOG_LEVEL`` written inside the block.

    The standard error (file descriptor 2, where C++ code writes) goes to a temporary file
    for the block; at its end every line :func:`kept_line` keeps (Python warnings, errors,
    the package's own messages) is written to the standard error, in order. With the level
    unset or 0 (TensorFlow's default) the block runs untouched.

    Args:
        environ: Where ``TF_CPP_MIN_LOG_LEVEL`` is read (``os.environ`` by default).

    Example:
        >>> with native_log_filter():
        ...     flatbuffer = converter.convert()
    """
    level = min_log_level(environ)
    saved = _duplicate_stderr() if level >= 1 else None
    if saved is None:  # nothing to drop, or no standard error to capture
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True)
                    if kept_line(line, level)]
            _write_all(2, b"".join(kept))


def _duplicate_stderr():
    """A duplicate of file descriptor 2 (after flushing ``sys.stderr``), or None if there is
    no usable one (e.g. ``pythonw``)."""
    _flush_stderr()
    try:
        return os.dup(2)
    except OSError:
        return None


def _flush_stderr():
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # None, closed or broken
        pass


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def progress_verbosity(stream=None):
    """``verbose`` for Keras' ``fit``: 1 (progress bars) on a terminal, 2 otherwise.

    Keras 3's progress bars write ANSI colour codes, backspaces and carriage returns even
    when the output is a file or a pipe; ``verbose=2`` writes one plain line per epoch.

    Args:
        stream: The output the bars go to (``sys.stdout`` by default).

    Returns:
        1 or 2.
    """
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return 1 if isatty is not None and isatty() else 2
