"""Running TFLite files with the LiteRT interpreter (``ai_edge_litert``, XNNPACK on CPU)."""

import os
import statistics
import time
from typing import NamedTuple

import numpy as np

from keras_mobilenets import _checks, quiet
from keras_mobilenets.export import delegation, report
from keras_mobilenets.export._litert import import_litert


class Latency(NamedTuple):
    """Wall-clock time of one ``invoke`` in milliseconds."""

    median_ms: float
    p90_ms: float
    runs: int


def check_latency_runs(runs, warmup):
    """Raises ``ValueError`` unless ``runs >= 1`` and ``warmup >= 0``."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"`runs` must be >= 1 and `warmup` >= 0, got {runs} and {warmup}.")


def random_input(rng, shape, dtype):
    """A random input of ``shape``: the whole range of an integer ``dtype``, [0, 1) floats."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    return rng.uniform(0.0, 1.0, shape).astype(dtype)


def time_calls(call, runs, warmup):
    """Times ``call()`` ``runs`` times after ``warmup`` untimed calls.

    Returns:
        A ``Latency(median_ms, p90_ms, runs)``.

    Example:
        >>> time_calls(interpreter.invoke, runs=20, warmup=2).median_ms
        1.8
    """
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    p90 = float(np.percentile(times, 90))
    return Latency(median_ms=float(statistics.median(times)), p90_ms=p90, runs=runs)


def _describe(detail):
    scale, zero_point = detail["quantization"]
    return {
        "name": detail["name"],
        "index": detail["index"],
        "shape": tuple(int(d) for d in detail["shape"]),
        "shape_signature": tuple(int(d) for d in detail["shape_signature"]),
        "dtype": np.dtype(detail["dtype"]),
        "quantization": (float(scale), int(zero_point)),
    }


class LiteRTModel:
    """A TFLite model run with ``ai_edge_litert.interpreter.Interpreter``.

    Args:
        model: Path of a .tflite file, or its bytes (e.g. from ``to_tflite``).
        num_threads: CPU threads of the interpreter.

    Raises:
        ImportError: If ai-edge-litert is not installed.
        TypeError: If ``model`` is neither a path nor bytes.
        FileNotFoundError: If ``model`` is a path with no file (named).
        ValueError: If the file or bytes are not a TFLite model ("<path> is not a TFLite
            model (...)", see ``delegation.check_tflite_bytes``).

    Example:
        >>> runner = LiteRTModel(to_tflite(model))
        >>> probabilities = runner.predict(images)  # float32, whatever the file's dtypes
        >>> runner.op_histogram()["HARD_SWISH"], runner.latency().median_ms
    """

    def __init__(self, model, num_threads=2):
        interpreter_module = import_litert("interpreter")
        if not isinstance(model, (bytes, bytearray, str, os.PathLike)):
            raise TypeError(
                f"`model` must be a .tflite path or bytes, got {type(model).__name__}."
            )
        self.model_content = delegation.flatbuffer_bytes(model)
        self.num_threads = num_threads
        with quiet.native_log_filter():  # LiteRT's "INFO: Created ... XNNPACK delegate" line
            self._interpreter = interpreter_module.Interpreter(
                model_content=self.model_content, num_threads=num_threads
            )
            self._interpreter.allocate_tensors()

    @property
    def input_details(self):
        """List of dicts: name, index, shape, shape_signature, dtype, quantization (scale, zp)."""
        return [_describe(d) for d in self._interpreter.get_input_details()]

    @property
    def output_details(self):
        """List of dicts, as ``input_details``, for the outputs."""
        return [_describe(d) for d in self._interpreter.get_output_details()]

    @property
    def input_shape(self):
        """Shape of the (first) input, batch included, e.g. ``(1, 224, 224, 3)``."""
        return self.input_details[0]["shape"]

    @property
    def input_dtype(self):
        """Numpy dtype of the (first) input."""
        return self.input_details[0]["dtype"]

    def _quantize(self, x, detail):
        """Casts or quantizes ``x`` to the dtype of the input tensor ``detail``."""
        dtype = detail["dtype"]
        scale, zero_point = detail["quantization"]
        if np.issubdtype(dtype, np.integer) and x.dtype != dtype:
            # Values (float, or integers of another dtype such as uint8 pixels for an
            # int8 file): quantized, never reinterpreted by a cast.
            x = x.astype("float32")
            if scale == 0:
                raise ValueError(
                    f"Input {detail['name']!r} is {dtype} without quantization parameters; "
                    f"pass {dtype} values."
                )
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
        return x.astype(dtype)

    @staticmethod
    def _dequantize(y, detail):
        scale, zero_point = detail["quantization"]
        if np.issubdtype(detail["dtype"], np.integer) and scale != 0:
            return ((y.astype("float32") - zero_point) * scale).astype("float32")
        return y.astype("float32") if np.issubdtype(y.dtype, np.floating) else y

    def predict(self, images):
        """Runs a batch through the model.

        Inputs are quantized with the input tensor's scale and zero point when the file
        takes int8/uint8, unless they already have the file's dtype (then they are passed
        as they are): uint8 pixels for an int8 file are quantized, not cast.
        Outputs are dequantized to float32. The batch is run in chunks of the file's
        batch size (usually one sample at a time).

        Args:
            images: Array of shape ``(batch, *input_shape[1:])``.

        Returns:
            A float32 array ``(batch, ...)``, or a list of them for several outputs.

        Raises:
            ValueError: If the model has several inputs, or ``images`` does not fit the
                file's input: a wrong shape, a dtype that is not an integer or float one,
                NaN or inf (the message names ``images``, what it got and the input
                shape). The value range is not checked: a file does not record it.

        Example:
            >>> LiteRTModel("mobilenet_v2_1.0_224_quant.tflite").predict(images).shape
            (2, 1001)
        """
        inputs = self._interpreter.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"predict() supports single-input models; this one has {len(inputs)}.")
        detail = _describe(inputs[0])
        expected = detail["shape"]
        x = _checks.check_input_batch("images", images, expected[1:])
        chunk = expected[0]
        if len(x) % chunk:
            raise ValueError(
                f"The file has a fixed batch of {chunk}; got {len(x)} images, not a multiple."
            )
        x = self._quantize(x, detail)
        outputs = self._interpreter.get_output_details()
        results = [[] for _ in outputs]
        for start in range(0, len(x), chunk):
            self._interpreter.set_tensor(detail["index"], x[start:start + chunk])
            self._interpreter.invoke()
            for result, out in zip(results, outputs):
                result.append(self._dequantize(self._interpreter.get_tensor(out["index"]),
                                               _describe(out)))
        arrays = [np.concatenate(result) for result in results]
        return arrays[0] if len(arrays) == 1 else arrays

    def latency(self, runs=50, warmup=5, seed=0):
        """Times ``invoke`` on a random input.

        Args:
            runs: Timed invocations.
            warmup: Untimed invocations first.
            seed: Seed of the random input.

        Returns:
            A ``Latency(median_ms, p90_ms, runs)``.

        Example:
            >>> LiteRTModel(flatbuffer).latency(runs=20).median_ms
            1.8
        """
        check_latency_runs(runs, warmup)
        rng = np.random.default_rng(seed)
        for detail in self._interpreter.get_input_details():
            value = random_input(rng, detail["shape"], detail["dtype"])
            self._interpreter.set_tensor(detail["index"], value)
        return time_calls(self._interpreter.invoke, runs, warmup)

    def op_histogram(self):
        """``collections.Counter`` of op names in the main graph (see ``report.op_histogram``)."""
        return report.op_histogram(self.model_content)

    def tensor_types(self, ops=report.KERNEL_OPS):
        """Input/weights/bias/output dtypes of the kernel ops (see ``report.op_tensor_types``)."""
        return report.op_tensor_types(self.model_content, ops=ops)

    def op_report(self):
        """Text report of op counts and dtypes (see ``report.op_report``)."""
        return report.op_report(self.model_content)

