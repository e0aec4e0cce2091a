"""Argument types and output helpers shared by the subcommands of the command line.

Every argparse type turns a bad value into one line naming the option, what it got and
what is allowed; runtime errors are printed as one line too (no traceback).

Example:
    >>> int_at_least(1)("3")
    3
"""

import argparse
import os
import sys


def show_progress():
    """Progress bars only on a terminal: a redirected output gets the results alone."""
    return sys.stdout.isatty()


def number_type(convert, accept, allowed):
    """An argparse type: ``convert(text)`` if ``accept`` takes it, else an error saying
    what is ``allowed``."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value

    return parse


def int_at_least(minimum):
    return number_type(int, lambda value: value >= minimum, f"an int >= {minimum}")


positive_float = number_type(float, lambda value: value > 0, "a number > 0")
fraction = number_type(float, lambda value: 0 <= value < 1, "a number in [0, 1)")


def weights(text):
    """A weights keyword ('imagenet', ...), 'none' (random initialisation; any case) or an
    existing weights file."""
    from keras_mobilenets.weights import KEYWORDS, WEIGHTS_SUFFIXES

    if text.lower() in KEYWORDS:
        return text.lower()
    if text.lower() == "none":
        return None
    if not os.path.isfile(text) or not text.endswith(WEIGHTS_SUFFIXES):
        keywords = ", ".join(repr(k) for k in KEYWORDS)
        raise argparse.ArgumentTypeError(
            f"must be one of {keywords}, 'none' or an existing weights file ending in "
            f"{', '.join(WEIGHTS_SUFFIXES)}, got {text!r}"
        )
    return text


def export_path(text):
    """A path ending in .tflite or .onnx (the kinds of file ``finetune --export`` writes)."""
    if not text.endswith((".tflite", ".onnx")):
        raise argparse.ArgumentTypeError(
            f"must be a path ending in .tflite or .onnx, got {text!r}")
    return text


MAX_ERROR_CHARS = 600


def one_line_error(command, error):
    """``error`` as one line (long reports cut), for a command's failure."""
    text = " ".join(str(error).split())
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + " [...]"
    return f"keras-mobilenets {command}: error: {text}"
