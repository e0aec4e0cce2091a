"""Reading PyTorch state dicts (``.pth`` / ``.pt`` / ``.bin``, ``.safetensors``) as numpy.

:func:`read_state_dict` never runs code from the file. With PyTorch installed it uses
``torch.load(weights_only=True)``; without it, this module reads the ``torch.save`` formats
itself: the zip format (PyTorch >= 1.6: ``<archive>/data.pkl`` plus one record per storage
under ``<archive>/data/``) and the older "legacy" format (a sequence of pickles followed by
the raw storages). Its unpickler accepts only the globals a state dict of tensors needs
(``torch._utils._rebuild_tensor_v2``, the ``torch.*Storage`` types,
``collections.OrderedDict``, ...); any other global (``os.system``, ``builtins.eval``, a
class of the author's code) is refused with a ``ValueError`` naming the file and the
global. ``.safetensors`` files hold no code and are read with ``safetensors.numpy``.

Example:
    >>> from keras_mobilenets.weights.torch_checkpoint import read_state_dict
    >>> state = read_state_dict("shufflenetv2_x0.5-f707e7126e.pth")
    >>> state["conv1.0.weight"].shape
    (24, 3, 3, 3)
"""

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

#: File name endings read as PyTorch state dicts.
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")

# torch.<Name>Storage -> numpy dtype of its elements.
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _StorageType:
    """Stands for a ``torch.<Name>Storage`` class found in the pickle."""

    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A flat numpy array standing for one torch storage."""

    def __init__(self, array):
        self.array = array


class _PendingTensor:
    """A tensor of a legacy file, whose storages follow the pickle that names them."""

    def __init__(self, storage, offset, size, stride):
        self.arguments = (storage, offset, size, stride)

    def resolve(self):
        return _rebuild_tensor(*self.arguments)


def _rebuild_tensor(storage, offset, size, stride, *unused):
    """numpy twin of ``torch._utils._rebuild_tensor_v2`` (extra arguments are ignored:
    ``requires_grad``, backward hooks, metadata)."""
    array = storage.array
    if array is None:
        return _PendingTensor(storage, offset, size, stride)
    itemsize = array.dtype.itemsize
    if not size:
        return array[offset:offset + 1].reshape(()).copy()
    view = np.lib.stride_tricks.as_strided(
        array[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride),
        writeable=False,
    )
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, *unused):
    return data


# (module, name) -> what the restricted unpickler returns for it.
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch", "Size"): tuple,
    **{("torch", name): None for name in _STORAGE_DTYPES},
}


def _to_numpy_dtype(dtype, raw):
    """``raw`` bytes as a flat array of ``dtype`` (bfloat16 widened to float32)."""
    if dtype == "bfloat16":
        halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
        return (halves << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that builds only tensors, storages and (ordered) dicts."""

    def __init__(self, file, path, load_storage):
        super().__init__(file)
        self._path = path
        self._load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise ValueError(
                f"`weights` file {self._path!r} was refused: its pickle needs the global "
                f"{module}.{name}, which a PyTorch state dict of tensors does not use (loading "
                "it could run code from the file). Only tensors in (ordered) dicts can be read; "
                "re-save the file with torch.save(model.state_dict(), path) or as .safetensors."
            )
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        return _ALLOWED_GLOBALS[(module, name)]

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise ValueError(
                f"`weights` file {self._path!r}: unexpected persistent id {pid!r} in its pickle."
            )
        storage_type, key = pid[1], pid[2]
        if not isinstance(storage_type, _StorageType):
            raise ValueError(
                f"`weights` file {self._path!r}: unknown storage type {storage_type!r}."
            )
        return self._load_storage(str(key), storage_type, pid)


def _corrupt(path, why):
    return ValueError(f"`weights` file {path!r} is not a readable PyTorch file: {why}.")


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise _corrupt(path, "a zip file without exactly one data.pkl record")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in names and archive.read(byteorder).strip() != b"little":
            raise _corrupt(path, "its tensors are big-endian")
        storages = {}

        def load_storage(key, storage_type, pid):
            if key not in storages:
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise _corrupt(path, f"the record {record!r} is missing")
                storages[key] = _Storage(
                    _to_numpy_dtype(storage_type.dtype, archive.read(record))
                )
            return storages[key]

        with archive.open(pickles[0]) as f:
            data = io.BytesIO(f.read())
        return _RestrictedUnpickler(data, path, load_storage).load()


def _read_legacy(path):
    """The pre-1.6 format: magic number, protocol, system info, the object (storages by
    key), the list of keys, then each storage as an int64 element count and raw bytes."""
    with open(path, "rb") as f:
        def unpickle(load_storage=None):
            return _RestrictedUnpickler(f, path, load_storage or _no_storage).load()

        def _no_storage(key, storage_type, pid):
            raise _corrupt(path, "a storage outside the object pickle")

        if unpickle() != _LEGACY_MAGIC:
            raise _corrupt(path, "neither a zip file nor a legacy torch.save file")
        if unpickle() != _LEGACY_PROTOCOL:
            raise _corrupt(path, "an unknown legacy protocol version")
        unpickle()  # system info: byte order and sizes
        wanted = {}

        def load_storage(key, storage_type, pid):
            if len(pid) > 5 and pid[5] is not None:
                raise _corrupt(path, "storage views are not supported")
            wanted.setdefault(key, (storage_type, _Storage(None)))
            return wanted[key][1]

        result = unpickle(load_storage)
        for key in unpickle():
            storage_type, storage = wanted[str(key)]
            (count,) = struct.unpack("<q", f.read(8))
            itemsize = 2 if storage_type.dtype == "bfloat16" else (
                np.dtype(storage_type.dtype).itemsize)
            raw = f.read(count * itemsize)
            if len(raw) != count * itemsize:
                raise _corrupt(path, "it ends inside a storage")
            storage.array = _to_numpy_dtype(storage_type.dtype, raw)
    if isinstance(result, dict):
        result = collections.OrderedDict(
            (k, v.resolve() if isinstance(v, _PendingTensor) else v) for k, v in result.items()
        )
    return result


def _with_torch(path):
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"`weights` file {path!r} was refused by torch.load(weights_only=True), which "
            f"does not run code from files: {error}"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise _corrupt(path, f"torch.load said: {error}") from None

    def to_numpy(value):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.dtype == torch.bfloat16:
                value = value.float()
            return value.numpy()
        if isinstance(value, dict):
            return collections.OrderedDict((k, to_numpy(v)) for k, v in value.items())
        return value

    return to_numpy(state)


def _torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _flatten(state, path):
    """The ``{key: array}`` dict of a loaded object; unwraps ``{"state_dict": ...}`` and
    ``{"model": ...}`` checkpoints."""
    if isinstance(state, dict) and len(state) == 1:
        (key, value), = state.items()
        if key in ("state_dict", "model") and isinstance(value, dict):
            state = value
    if not isinstance(state, dict):
        raise ValueError(
            f"`weights` file {path!r} holds a {type(state).__name__}, not a state dict "
            "({name: tensor})."
        )
    result = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, np.ndarray):
            raise ValueError(
                f"`weights` file {path!r} is not a state dict of tensors: entry {key!r} holds "
                f"a {type(value).__name__}."
            )
        result[key] = value
    return result


def read_state_dict(path, use_torch=None):
    """Reads a PyTorch state dict without running code from the file.

    Args:
        path: A ``.pth`` / ``.pt`` / ``.bin`` file written by ``torch.save`` (zip or legacy
            format) or a ``.safetensors`` file.
        use_torch: Read ``.pth`` files with ``torch.load(weights_only=True)`` (True), with
            this module's own restricted reader (False) or the former when PyTorch is
            importable (None, the default).

    Returns:
        ``{key: numpy array}`` in the file's order (bfloat16 tensors become float32).

    Raises:
        ValueError: If the file is missing, not a PyTorch/safetensors file, not a state dict
            of tensors, or its pickle needs a global outside tensors and dicts (the
            message names the file and the global).

    Example:
        >>> state = read_state_dict("mobilenet_v2-7ebf99e0.pth")
        >>> state["features.0.0.weight"].shape
        (32, 3, 3, 3)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"`weights` must be an existing file, got {path!r}.")
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return dict(load_file(path))
        except (SafetensorError, OSError) as error:
            raise _corrupt(path, f"safetensors said: {error}") from None
    if use_torch is None:
        use_torch = _torch_available()
    if use_torch:
        return _flatten(_with_torch(path), path)
    try:
        if zipfile.is_zipfile(path):
            state = _read_zip(path)
        else:
            state = _read_legacy(path)
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, struct.error,
            KeyError, TypeError, IndexError, AttributeError) as error:
        raise _corrupt(path, f"{type(error).__name__}: {error}") from None
    return _flatten(state, path)
