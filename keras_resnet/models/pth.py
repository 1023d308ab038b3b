"""Reading a PyTorch ``.pth`` file (``torch.save``) into NumPy arrays without torch.

Since torch 1.6, ``torch.save`` writes a zip archive: ``<name>/data.pkl`` pickles the
object, and each tensor's storage is a raw little-endian file ``<name>/data/<key>`` that the
pickle refers to by a persistent id. Loading it needs no torch: an unpickler that knows
the handful of names a state dict uses (``OrderedDict``, torch's storage types, its tensor
rebuild functions) rebuilds each tensor as a NumPy view of its storage. Every other name
is refused, as ``torch.load(weights_only=True)`` refuses them, so reading a file runs no
code from it.

Why not torch: the weights of torchvision are the weights users of the TensorFlow and JAX
backends want too, and torch is a 200 MB (CPU) to multi-GB (CUDA) install for reading a
zip of arrays. Files in torch's older format (before 1.6, not a zip) are read with torch
where it is installed.
"""

from __future__ import annotations

import collections
import functools
import os
import pickle
import zipfile

import numpy as np

# torch's storage classes and dtypes, by the name the pickle uses, as NumPy dtypes.
# bfloat16 has no NumPy dtype: it is read as uint16 and widened to float32 (exactly).
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "UntypedStorage": "uint8",
}
_TORCH_DTYPES = {
    "float64": "float64",
    "float32": "float32",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}


class PthFormatError(ValueError):
    """A file that is not a ``torch.save`` archive of tensors this reader can rebuild."""


class _Dtype(str):
    """A torch storage type or dtype, as the NumPy dtype name it stands for."""


def _storage_array(raw, dtype: str, byteorder: str) -> np.ndarray:
    """The storage's bytes as one element per tensor element (bfloat16 widened)."""
    if dtype == "bfloat16":
        bits = np.frombuffer(raw, dtype=np.dtype("uint16").newbyteorder(byteorder))
        return (bits.astype("uint32") << 16).view("float32")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder(byteorder))


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused) -> np.ndarray:
    """torch's ``_rebuild_tensor_v2``: a strided view of the storage, copied."""
    if not size:
        return np.array(storage[storage_offset]).copy()
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:],
        shape=tuple(size),
        strides=tuple(step * itemsize for step in stride),
        writeable=False,
    )
    return np.ascontiguousarray(view).astype(view.dtype.newbyteorder("="), copy=False)


def _rebuild_tensor_v3(byteorder, storage, storage_offset, size, stride, _grad, _hooks, dtype, *_):
    """torch's ``_rebuild_tensor_v3``: an untyped (bytes) storage and the tensor's dtype."""
    itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
    typed = _storage_array(storage.tobytes(), dtype, byteorder)
    return _rebuild_tensor(typed, storage_offset // itemsize, size, stride)


def _rebuild_parameter(data, *_unused):
    return data


_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _Dtype(dtype) for name, dtype in _STORAGE_DTYPES.items()},
    **{("torch", name): _Dtype(dtype) for name, dtype in _TORCH_DTYPES.items()},
}


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, byteorder: str, path: str):
        super().__init__(file)
        self._archive, self._prefix, self._byteorder, self._path = (
            archive,
            prefix,
            byteorder,
            path,
        )
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v3"):
            return functools.partial(_rebuild_tensor_v3, self._byteorder)
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise PthFormatError(
                f"{self._path} pickles {module}.{name}, which a file of tensors does not "
                "need: only state dicts (and dicts or lists of tensors) can be read. "
                f"Received: path={self._path!r}"
            ) from None

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid
        if kind != "storage":
            raise PthFormatError(
                f"{self._path} refers to a {kind!r}, not a tensor storage. "
                f"Received: path={self._path!r}"
            )
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}/data/{key}")
            self._storages[key] = _storage_array(raw, str(storage_type), self._byteorder)
        return self._storages[key]


def is_torch_zip(path: str | os.PathLike) -> bool:
    """Whether the file is a ``torch.save`` zip archive (torch 1.6 and later).

    Example:
        >>> is_torch_zip("resnet18-f37072fd.pth")  # doctest: +SKIP
        True
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/data.pkl") for name in archive.namelist())


def read_pth(path: str | os.PathLike):
    """The object a ``torch.save`` zip archive holds, each tensor as a NumPy array.

    Raises:
        PthFormatError: the file is not such an archive, or it pickles more than tensors
            in dicts and lists.

    Example:
        >>> state_dict = read_pth("resnet18-f37072fd.pth")  # doctest: +SKIP
        >>> state_dict["conv1.weight"].shape  # doctest: +SKIP
        (64, 3, 7, 7)
    """
    path = os.fspath(path)
    if not is_torch_zip(path):
        raise PthFormatError(
            f"{path} is not a torch.save archive (a zip with a data.pkl): torch's format "
            "before 1.6 is read with torch installed, and other files not at all. "
            f"Received: path={path!r}"
        )
    with zipfile.ZipFile(path) as archive:
        pickle_name = next(name for name in archive.namelist() if name.endswith("/data.pkl"))
        prefix = pickle_name.rsplit("/", 1)[0]
        names = set(archive.namelist())
        byteorder = "little"
        if f"{prefix}/byteorder" in names:
            byteorder = archive.read(f"{prefix}/byteorder").decode().strip()
        with archive.open(pickle_name) as file:
            unpickler = _StateDictUnpickler(
                file, archive, prefix, "<" if byteorder == "little" else ">", path
            )
            try:
                return unpickler.load()
            except (pickle.UnpicklingError, KeyError, ValueError, TypeError) as error:
                if isinstance(error, PthFormatError):
                    raise
                raise PthFormatError(
                    f"{path} could not be read as a torch.save archive ({error}). "
                    f"Received: path={path!r}"
                ) from error
