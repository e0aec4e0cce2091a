"""Reading PyTorch state dicts without running code: real torch.save files (zip and legacy
formats, written by tests/reference/make_torchvision_references.py), safetensors, and
pickles that would run code, which must be refused."""

import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from keras_mobilenets.weights import torch_checkpoint
from keras_mobilenets.weights.torch_checkpoint import read_state_dict

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "reference", "torchvision")


def reference(name):
    return os.path.join(REFERENCE, name)


@pytest.mark.parametrize("file_name", ["tensors_zip.pth", "tensors_legacy.pth"])
def test_reads_torch_save_formats(file_name):
    state = read_state_dict(reference(file_name), use_torch=False)
    expected = np.load(reference("tensors.npz"))
    assert list(state) == ["float32", "float16", "bfloat16", "int64", "scalar", "transposed",
                           "sliced"]
    for key in expected.files:
        assert state[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(state[key], expected[key], err_msg=key)
    assert state["transposed"].shape == (6, 4) and state["scalar"].shape == ()


def test_reads_a_torchvision_state_dict():
    state = read_state_dict(reference("shufflenet_v2_x0_5.pth"), use_torch=False)
    assert state["conv1.0.weight"].shape == (24, 3, 3, 3)
    assert state["fc.weight"].shape == (10, 1024)
    assert state["conv1.1.num_batches_tracked"].dtype == np.int64
    assert all(isinstance(v, np.ndarray) for v in state.values())


def test_reads_safetensors(tmp_path):
    from safetensors.numpy import save_file

    expected = np.load(reference("tensors.npz"))
    path = str(tmp_path / "tensors.safetensors")
    save_file({k: np.ascontiguousarray(expected[k]) for k in ("float32", "int64")}, path)
    state = read_state_dict(path)
    np.testing.assert_array_equal(state["float32"], expected["float32"])
    np.testing.assert_array_equal(state["int64"], expected["int64"])


class _RunsCode:
    def __reduce__(self):
        return os.system, ("echo owned > /dev/null",)


def test_refuses_a_pickle_that_would_run_code(tmp_path):
    path = str(tmp_path / "evil.pth")
    with open(path, "wb") as f:
        pickle.dump({"weight": _RunsCode()}, f, protocol=2)
    with pytest.raises(ValueError, match=r"evil\.pth.*refused.*(posix|nt)\.system"):
        read_state_dict(path, use_torch=False)


def test_refuses_code_inside_a_zip_checkpoint(tmp_path):
    path = str(tmp_path / "evil_zip.pth")
    payload = pickle.dumps({"weight": _RunsCode()}, protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil_zip/data.pkl", payload)
        archive.writestr("evil_zip/byteorder", "little")
    with pytest.raises(ValueError, match=r"evil_zip\.pth.*refused.*(posix|nt)\.system"):
        read_state_dict(path, use_torch=False)


def test_refuses_other_globals(tmp_path):
    path = str(tmp_path / "eval.pth")
    buffer = io.BytesIO()
    # GLOBAL builtins.eval, a string argument, REDUCE: eval("1 + 1") in a plain pickle.
    buffer.write(b"\x80\x02cbuiltins\neval\nX\x05\x00\x00\x001 + 1\x85R.")
    with open(path, "wb") as f:
        f.write(buffer.getvalue())
    with pytest.raises(ValueError, match=r"builtins\.eval"):
        read_state_dict(path, use_torch=False)


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="existing file"):
        read_state_dict(str(tmp_path / "missing.pth"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="garbage.pth.*not a readable PyTorch file"):
        read_state_dict(str(garbage), use_torch=False)
    not_a_dict = tmp_path / "list.pth"
    not_a_dict.write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match="list.pth"):
        read_state_dict(str(not_a_dict), use_torch=False)
    bad_safetensors = tmp_path / "bad.safetensors"
    bad_safetensors.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="bad.safetensors"):
        read_state_dict(str(bad_safetensors))


def test_unwraps_state_dict_checkpoints(tmp_path):
    state = read_state_dict(reference("tensors_zip.pth"), use_torch=False)
    assert torch_checkpoint._flatten({"state_dict": state}, "x.pth").keys() == state.keys()
