"""The ONNX tools are imported lazily, with an error naming the extra (no ONNX needed)."""

import sys

import pytest

import keras_mobilenets as km
from keras_mobilenets import export


@pytest.mark.parametrize("missing", ["onnxruntime", "tf2onnx"])
def test_missing_onnx_tools_name_the_extra(monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` raises ImportError
    with pytest.raises(ImportError, match=rf"need {missing} .*keras-mobilenets\[onnx\]"):
        if missing == "onnxruntime":
            export.OnnxModel(b"any bytes")
        else:
            export.to_onnx(km.MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None))
