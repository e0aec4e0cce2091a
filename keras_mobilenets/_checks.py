"""Argument validation shared by every module of the package.

Each check raises ``ValueError`` naming the argument, the value it got and what is allowed,
so a user never sees a stack trace from deep inside TensorFlow. ``True`` and ``False`` are
never accepted as numbers (``isinstance(True, int)`` holds in Python). This module imports
nothing of the package (only numpy), and Keras only inside ``require_tensorflow_backend``
(which raises ``RuntimeError``), so any module may use it. ``check_input_batch`` checks
data given to a model (shape, dtype, NaN/inf, value range) the same way everywhere.

Example:
    >>> check_int("epochs", 3, minimum=1)
    >>> check_int("epochs", True, minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: `epochs` must be an int >= 1, got True.
"""

import numbers

import numpy as np

#: Smallest input rows/cols a builder accepts.
MIN_INPUT_SIZE = 32


def is_int(value):
    """Whether ``value`` is an integer (Python or numpy), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    """Whether ``value`` is a real number (Python or numpy), and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _range_text(minimum, maximum):
    if maximum is None:
        return f">= {minimum}"
    return f"in [{minimum}, {maximum}]"


def check_int(name, value, minimum=None, maximum=None, allow_none=False):
    """Raises ``ValueError`` unless ``value`` is an int in ``[minimum, maximum]``.

    Args:
        name: The argument's name, for the message.
        value: The value to check.
        minimum: Smallest allowed value (None: no bound).
        maximum: Largest allowed value (None: no bound).
        allow_none: Whether None is allowed too.

    Example:
        >>> check_int("seed", None, minimum=0, allow_none=True)
    """
    if allow_none and value is None:
        return
    ok = is_int(value) and (minimum is None or value >= minimum) and (
        maximum is None or value <= maximum
    )
    if not ok:
        if minimum is None and maximum is None:
            allowed = "an int"
        else:
            allowed = f"an int {_range_text(minimum, maximum)}"
        prefix = "None or " if allow_none else ""
        raise ValueError(f"`{name}` must be {prefix}{allowed}, got {value!r}.")


def check_positive_int(name, value):
    """Raises ``ValueError`` unless ``value`` is an int >= 1."""
    check_int(name, value, minimum=1)


def check_number(name, value, low=None, high=None, low_open=False, high_open=False,
                 allow_none=False):
    """Raises ``ValueError`` unless ``value`` is a real number within the given bounds.

    Args:
        name: The argument's name, for the message.
        value: The value to check.
        low: Lower bound (None: none).
        high: Upper bound (None: none).
        low_open: Exclude ``low`` itself.
        high_open: Exclude ``high`` itself.
        allow_none: Whether None is allowed too.

    Example:
        >>> check_number("iou_threshold", 0.5, low=0, high=1, low_open=True)
    """
    if allow_none and value is None:
        return
    ok = is_number(value) and value == value  # NaN is no number here
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            allowed = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            allowed = f"a number {'>' if low_open else '>='} {low}"
        elif high is not None:
            allowed = f"a number {'<' if high_open else '<='} {high}"
        else:
            allowed = "a number"
        prefix = "None or " if allow_none else ""
        raise ValueError(f"`{name}` must be {prefix}{allowed}, got {value!r}.")


def check_positive_number(name, value):
    """Raises ``ValueError`` unless ``value`` is a real number > 0."""
    check_number(name, value, low=0, low_open=True)


def check_rate(name, value):
    """Raises ``ValueError`` unless ``0 <= value < 1``."""
    check_number(name, value, low=0, high=1, high_open=True)


def check_bool(name, value):
    """Raises ``ValueError`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")


def check_choice(name, value, allowed):
    """Raises ``ValueError`` unless ``value`` is one of ``allowed`` (True is not 1)."""
    is_bool = isinstance(value, bool) and not any(isinstance(a, bool) for a in allowed)
    try:
        found = value in allowed
    except TypeError:  # unhashable or incomparable values
        found = False
    if is_bool or not found:
        raise ValueError(f"`{name}` must be one of {allowed}, got {value!r}.")


def int_pair(value, minimum=1):
    """``value`` (an int or a pair of ints >= ``minimum``) as a tuple, else None.

    Example:
        >>> int_pair(3), int_pair((2, 4)), int_pair((0, 1))
        ((3, 3), (2, 4), None)
    """
    if is_int(value):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return None
    if not all(is_int(v) and v >= minimum for v in value):
        return None
    return tuple(int(v) for v in value)


def check_size_pair(name, value, minimum=1):
    """``value``, a ``(rows, cols)`` tuple or list of ints >= ``minimum``, as a tuple of ints.

    Unlike ``int_pair`` a single int is not accepted, and a bad value raises.

    Raises:
        ValueError: Naming the argument and its value.

    Example:
        >>> check_size_pair("output_shape", [96, 128])
        (96, 128)
        >>> check_size_pair("output_shape", 96)
        Traceback (most recent call last):
        ...
        ValueError: `output_shape` must be (rows, cols), a pair of ints >= 1, got 96.
    """
    pair = int_pair(value, minimum) if isinstance(value, (tuple, list)) else None
    if pair is None:
        raise ValueError(
            f"`{name}` must be (rows, cols), a pair of ints >= {minimum}, got {value!r}."
        )
    return pair


def check_input_shape(input_shape):
    """Validates a channels-last ``(rows, cols, channels)`` shape; None sizes are allowed."""
    if input_shape is None:
        return
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be a tuple (rows, cols, channels) (channels last), "
            f"got {input_shape!r}."
        )
    rows, cols, channels = input_shape
    for size in (rows, cols):
        if size is not None and not (is_int(size) and size >= MIN_INPUT_SIZE):
            raise ValueError(
                f"`input_shape` sizes must be None or ints >= {MIN_INPUT_SIZE}, "
                f"got {tuple(input_shape)!r}."
            )
    if not (is_int(channels) and channels >= 1):
        raise ValueError(
            f"`input_shape` must end with a channel count >= 1, got {tuple(input_shape)!r}."
        )


#: How to switch backends, for the messages of ``require_tensorflow_backend``.
SWITCH_TO_TENSORFLOW = (
    "Set the environment variable KERAS_BACKEND=tensorflow before keras is imported (e.g. "
    "`KERAS_BACKEND=tensorflow python train.py`, or `os.environ['KERAS_BACKEND'] = "
    "'tensorflow'` at the top of the script), or set \"backend\": \"tensorflow\" in "
    "~/.keras/keras.json."
)


class BackendError(RuntimeError):
    """A TensorFlow-only feature was asked for on another Keras backend.

    A ``RuntimeError``, so ``except RuntimeError`` keeps catching it; command-line tools
    catch this class to print the message instead of a traceback.
    """

    # Raised while TensorFlow traces a function (a tf.data map), it reaches the caller as
    # itself: AutoGraph would otherwise re-raise a subclass it does not know as StagingError.
    ag_pass_through = True


def require_tensorflow_backend(feature):
    """Raises :class:`BackendError` unless Keras runs on its TensorFlow backend.

    For the parts of the package that only exist in TensorFlow: quantization-aware training
    (tfmot and tf_keras), TFLite export, ``tf.distribute`` strategies and the SSD
    post-processing layer (TensorFlow's non-maximum suppression). The builders, heads,
    losses and training work on every Keras backend (docs/backends.md).

    Args:
        feature: What needs TensorFlow, for the message (e.g. ``"quantize_model"``).

    Raises:
        BackendError: (a ``RuntimeError``) on another backend, naming the feature, the
            backend in use and how to switch.

    Example:
        >>> require_tensorflow_backend("export.to_tflite")  # with KERAS_BACKEND=jax:
        Traceback (most recent call last):
        ...
        BackendError: export.to_tflite needs the TensorFlow backend of Keras, but Keras runs on
        'jax'. Set the environment variable KERAS_BACKEND=tensorflow before keras is ...
    """
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise BackendError(
            f"{feature} needs the TensorFlow backend of Keras, but Keras runs on {backend!r}. "
            f"{SWITCH_TO_TENSORFLOW}"
        )


#: What a model built with ``include_preprocessing=True`` takes: raw RGB pixels.
PIXEL_RANGE = (0.0, 255.0)


def _shape_text(shape):
    return "(" + ", ".join("any" if d is None else str(d) for d in shape) + (
        ",)" if len(shape) == 1 else ")")


def check_input_batch(argument, batch, expected_shape, value_range=None, *,
                      allow_sample=False, element="a batch"):
    """Checks model inputs against the model and returns them as a numpy batch.

    ``batch`` must hold real numbers (any integer or float dtype, float16 and uint8
    included; not bool, complex, strings or objects), all finite, of shape
    ``(batch, *expected_shape)`` (None in ``expected_shape`` matches any size). With
    ``value_range=(low, high)`` every value must lie in it; with the package's
    :data:`PIXEL_RANGE` a non-empty batch whose largest value is in (0, 1] is refused too
    (pixels scaled to [0, 1], not the [0, 255] the model rescales inside).

    Args:
        argument: The argument's name, for the message (e.g. ``"representative_data"``).
        batch: Array-like (numpy array, tensor, nested lists).
        expected_shape: One sample's shape, e.g. the model's ``input_shape[1:]``.
        value_range: ``(low, high)`` the model expects, or None when it is not known
            (then only shape, dtype and finiteness are checked).
        allow_sample: Accept a single sample (rank ``len(expected_shape)``) too; it is
            returned with a batch axis of 1.
        element: How the message calls what was checked (``"an element"`` for one item
            of a dataset or generator).

    Returns:
        ``batch`` as a numpy array with a batch axis (its dtype unchanged).

    Raises:
        ValueError: Naming ``argument``, what it got and what the model expects.

    Example:
        >>> check_input_batch("images", np.zeros((2, 96, 96, 3)), (96, 96, 3)).shape
        (2, 96, 96, 3)
        >>> check_input_batch("images", np.zeros((2, 64, 64, 3)), (96, 96, 3))
        Traceback (most recent call last):
        ...
        ValueError: `images` must hold images of shape (H, W, C) = (96, 96, 3) to match the
        model's input; got a batch of shape (2, 64, 64, 3).
    """
    expected_shape = tuple(expected_shape)
    what = "images of shape (H, W, C) = " if len(expected_shape) == 3 else "samples of shape "
    wanted = (f"`{argument}` must hold {what}{_shape_text(expected_shape)} to match the "
              "model's input")
    try:
        array = np.asarray(batch)
    except (ValueError, TypeError) as error:  # ragged nested lists, unconvertible objects
        raise ValueError(f"{wanted}; got {element} numpy cannot read as an array ({error}).") \
            from None
    if array.dtype.kind not in "uif":
        raise ValueError(
            f"{wanted}, as real numbers (an integer or float dtype); got {element} of dtype "
            f"{array.dtype} (shape {array.shape})."
        )
    got_shape = array.shape
    if allow_sample and array.ndim == len(expected_shape):
        array = array[None]
    if array.ndim != len(expected_shape) + 1 or any(
        e is not None and e != s for e, s in zip(expected_shape, array.shape[1:])
    ):
        raise ValueError(f"{wanted}; got {element} of shape {got_shape}.")
    if not array.size:
        return array
    if array.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise ValueError(
                f"{wanted}, all finite; got {element} of shape {got_shape} with {bad} NaN or "
                "inf value(s)."
            )
    if value_range is None:
        return array
    low, high = value_range
    smallest, largest = float(array.min()), float(array.max())
    expected = f"{wanted}, with values in [{low:g}, {high:g}]"
    if (low, high) == PIXEL_RANGE:
        expected += " (raw RGB pixels: the model rescales them inside, include_preprocessing)"
    if smallest < low or largest > high:
        raise ValueError(
            f"{expected}; got {element} with values in [{smallest:g}, {largest:g}]."
        )
    if (low, high) == PIXEL_RANGE and 0.0 < largest <= 1.0:
        raise ValueError(
            f"{expected}; got {element} with values in [{smallest:g}, {largest:g}], which "
            "looks scaled to [0, 1]: multiply it by 255."
        )
    return array
