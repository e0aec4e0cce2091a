"""Running ONNX files with ONNX Runtime on the CPU (``onnxruntime.InferenceSession``)."""

import collections
import os
import tempfile

import numpy as np

from keras_mobilenets import _checks, quiet
from keras_mobilenets.export._onnx import import_onnx_tool, quiet_tools
from keras_mobilenets.export.litert import check_latency_runs, random_input, time_calls

#: Images per ``run`` when the file's batch size is open (``None``).
MAX_BATCH = 32
_ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def _describe(arg):
    shape = tuple(d if isinstance(d, int) else None for d in arg.shape)
    return {"name": arg.name, "shape": shape, "dtype": np.dtype(_ORT_DTYPES.get(arg.type, object))}


def _read(model):
    """The bytes of ONNX bytes or an .onnx path (the file named when missing)."""
    if isinstance(model, (bytes, bytearray)):
        return bytes(model), "The bytes are"
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"`model` must be an .onnx path or bytes, got {type(model).__name__}.")
    path = os.fspath(model)
    if not os.path.isfile(path):
        what = "is a directory, not a file" if os.path.isdir(path) else "does not exist"
        raise FileNotFoundError(f"ONNX file {path!r} {what}.")
    with open(path, "rb") as f:
        return f.read(), f"{path!r} is"


class OnnxModel:
    """An ONNX model run with ONNX Runtime's CPU execution provider.

    Args:
        model: Path of an .onnx file, or its bytes (e.g. from ``to_onnx``).
        num_threads: CPU threads of one inference (``intra_op_num_threads``).

    Raises:
        ImportError: Without onnxruntime (``pip install keras-mobilenets[onnx]``).
        TypeError: If ``model`` is neither a path nor bytes.
        FileNotFoundError: If ``model`` is a path with no file (named).
        ValueError: If the file or bytes are not an ONNX model ONNX Runtime can load
            ("<path> is not an ONNX model ONNX Runtime can run (...)"), or
            ``num_threads`` is not an int >= 1.

    Example:
        >>> runner = OnnxModel(to_onnx(model))
        >>> probabilities = runner.predict(images)  # float32
        >>> runner.latency().median_ms, runner.optimized_op_histogram()["QLinearConv"]
    """

    def __init__(self, model, num_threads=2):
        ort = import_onnx_tool("onnxruntime")
        self.model_content, subject = _read(model)
        _checks.check_positive_int("num_threads", num_threads)
        self.num_threads = num_threads
        try:
            self._session = self._session_of(ort, num_threads)
        except Exception as error:  # onnxruntime's InvalidProtobuf, Fail, InvalidGraph
            reason = " ".join(str(error).split())[:300]
            raise ValueError(
                f"{subject} not an ONNX model ONNX Runtime can run ({reason}); pass an .onnx "
                "file, e.g. one written by export.to_onnx."
            ) from None

    def _session_of(self, ort, num_threads, optimized_path=None, level=None):
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no optimizer notes on the standard error
        if optimized_path is not None:
            options.optimized_model_filepath = optimized_path
            options.graph_optimization_level = level
        with quiet.native_log_filter(), quiet_tools():
            return ort.InferenceSession(self.model_content, options,
                                        providers=["CPUExecutionProvider"])

    @property
    def input_details(self):
        """List of dicts: name, shape (None where the file leaves a size open), dtype."""
        return [_describe(arg) for arg in self._session.get_inputs()]

    @property
    def output_details(self):
        """List of dicts, as ``input_details``, for the outputs."""
        return [_describe(arg) for arg in self._session.get_outputs()]

    @property
    def input_shape(self):
        """Shape of the (first) input, batch included, e.g. ``(None, 224, 224, 3)``."""
        return self.input_details[0]["shape"]

    def predict(self, images):
        """Runs a batch through the model.

        Images are cast to the input's dtype (float32 for every file ``to_onnx`` writes:
        its int8 files quantize inside). A fixed batch size runs the images in chunks of
        it; an open one in chunks of up to ``MAX_BATCH``.

        Args:
            images: Array of shape ``(batch, *input_shape[1:])``.

        Returns:
            A float32 array ``(batch, ...)``, or a list of them for several outputs (in
            the file's output order, named by ``output_details``); integer outputs (the
            detector's labels and counts) keep their dtype.

        Raises:
            ValueError: If the model has several inputs, or ``images`` does not fit the
                file's input: a wrong shape, a dtype that is not an integer or float one,
                NaN or inf (the message names ``images``, what it got and the input
                shape), or a batch that is not a multiple of a fixed batch size.

        Example:
            >>> OnnxModel("model.onnx").predict(images).shape
            (2, 1000)
        """
        inputs = self.input_details
        if len(inputs) != 1:
            raise ValueError(f"predict() supports single-input models; this one has {len(inputs)}.")
        detail = inputs[0]
        x = _checks.check_input_batch("images", images, detail["shape"][1:])
        chunk = detail["shape"][0] or MAX_BATCH
        if detail["shape"][0] and len(x) % chunk:
            raise ValueError(
                f"The file has a fixed batch of {chunk}; got {len(x)} images, not a multiple."
            )
        if np.issubdtype(detail["dtype"], np.integer) and x.dtype != detail["dtype"]:
            raise ValueError(f"Input {detail['name']!r} is {detail['dtype']}; pass "
                             f"{detail['dtype']} values, got {x.dtype}.")
        x = x.astype(detail["dtype"])
        results = [[] for _ in self._session.get_outputs()]
        for start in range(0, len(x), chunk):
            outputs = self._session.run(None, {detail["name"]: x[start:start + chunk]})
            for result, output in zip(results, outputs):
                output = np.asarray(output)
                result.append(output.astype("float32") if output.dtype.kind == "f" else output)
        arrays = [np.concatenate(result) if result else np.zeros((0,), "float32")
                  for result in results]
        return arrays[0] if len(arrays) == 1 else arrays

    def latency(self, runs=50, warmup=5, seed=0):
        """Times one ``run`` on a random input of batch 1 (or the file's fixed batch).

        Args:
            runs: Timed runs.
            warmup: Untimed runs first.
            seed: Seed of the random input.

        Returns:
            A ``Latency(median_ms, p90_ms, runs)``, as ``LiteRTModel.latency``.

        Example:
            >>> OnnxModel("model.onnx").latency(runs=20).median_ms
            7.5
        """
        check_latency_runs(runs, warmup)
        rng = np.random.default_rng(seed)
        feed = {}
        for detail in self.input_details:
            shape = tuple(1 if d is None else d for d in detail["shape"])
            feed[detail["name"]] = random_input(rng, shape, detail["dtype"])
        return time_calls(lambda: self._session.run(None, feed), runs, warmup)

    def op_histogram(self):
        """``collections.Counter`` of the op types in the file's main graph.

        Example:
            >>> OnnxModel(int8_content).op_histogram()["QuantizeLinear"]
            65
        """
        onnx = import_onnx_tool("onnx")
        graph = onnx.load_model_from_string(self.model_content).graph
        return collections.Counter(node.op_type for node in graph.node)

    def optimized_op_histogram(self):
        """Op types of the graph ONNX Runtime runs after its optimizations.

        The graph after ONNX Runtime's basic and extended optimizations (the level that
        fuses QuantizeLinear/DequantizeLinear pairs into integer kernels such as
        QLinearConv, QLinearAdd, QLinearMul and QLinearGlobalAveragePool), as a
        ``collections.Counter``.

        Example:
            >>> OnnxModel(int8_content).optimized_op_histogram()["QLinearConv"]
            52
        """
        ort = import_onnx_tool("onnxruntime")
        onnx = import_onnx_tool("onnx")
        with tempfile.TemporaryDirectory(prefix="keras_mobilenets_onnx_") as folder:
            path = os.path.join(folder, "optimized.onnx")
            self._session_of(ort, 1, path, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
            graph = onnx.load(path).graph
        return collections.Counter(node.op_type for node in graph.node)
