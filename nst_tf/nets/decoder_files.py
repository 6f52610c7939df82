"""WCT's and AdaIN's decoders without TensorFlow: their layer plan and their weights files (read by
`nst_tf.nets.decoder`'s Keras models, and by `nst_tf.train.jax_train` on machines without TensorFlow)."""

import json
from pathlib import Path

import numpy as np

from nst_tf.errors import WeightsError
from nst_tf.files import atomic_write, sha256_of
from nst_tf.nets.layers import BLOCKS, CONV_LAYERS

LEVELS = (1, 2, 3, 4, 5)
VGG_WIDTHS = {block: width for block, _, width in BLOCKS}  # {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
FORMAT = "nst_tf-decoder-1"


def level_layer(level):
    """The encoder layer a level's decoder starts from: `conv<L>_1` (post-ReLU: the paper's relu<L>_1)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS} (relu1_1 ... relu5_1), not {level!r}")
    return f"conv{level}_1"


def level_stride(level):
    """Pixels a position of relu<L>_1 spans in each direction, and the decoder's upsampling: 2^(L-1)."""
    level_layer(level)
    return 2 ** (level - 1)


def widths_of(layers):
    """{block: channels} of VGG-19 weights in canonical form (`VGGWeights.layers`)."""
    return {block: layers[f"conv{block}_1"][0].shape[-1] for block, _, _ in BLOCKS}


def plan(level, widths=None):
    """The decoder's convolutions, in order: (name, in channels, out channels, upsample after).

    The encoder's layers from conv<L>_1 down to conv1_1, each reversed (out -> in channels), named
    `dec<b>_<c>` after the layer it mirrors; a 2x upsampling follows the mirror of every conv<b>_1
    with b > 1 (the encoder pools before it).
    """
    level_layer(level)
    widths = widths or VGG_WIDTHS
    mirrored = CONV_LAYERS[: CONV_LAYERS.index(f"conv{level}_1") + 1][::-1]
    steps = []
    for name in mirrored:
        block, conv = int(name[4]), int(name[6])
        into = 3 if name == "conv1_1" else widths[block - 1] if conv == 1 else widths[block]
        steps.append((f"dec{block}_{conv}", widths[block], into, conv == 1 and block > 1))
    return steps


def decoder_file(level):
    """The file name of a level's decoder weights: `decoder_relu<L>_1.npz`."""
    level_layer(level)
    return f"decoder_relu{level}_1.npz"


STORAGES = ("float32", "float16", "int8")
CHECKSUMS = "models.json"  # a models folder's record: {"files": {name: {"sha256": ..., ...}}, ...}


def quantise(kernel):
    """An int8 kernel and its float32 scale per output channel (symmetric, like the embedded VGG)."""
    scale = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0) / 127.0  # (C_out,)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.round(kernel / scale), -127, 127).astype(np.int8), scale


def write_arrays(weights, path, meta, storage="float32"):
    """Write a decoder's weights and `meta` (a JSON-able dict: level, encoder, ...) to `path` atomically.

    Args:
      weights: {"<layer>/<kernel|bias>": array} (the Keras layer and weight names).
      storage: how the convolution kernels are kept: "float32", "float16" (half the size), or
        "int8" (a quarter: int8 with a float32 scale per output channel); biases stay float32.
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, not {storage!r}")
    arrays = {}
    for key, value in weights.items():
        value = np.asarray(value, np.float32)
        if value.ndim < 4 or storage == "float32":
            arrays[key] = value
        elif storage == "float16":
            arrays[key] = value.astype(np.float16)
        else:
            arrays[key], arrays[f"{key}@scale"] = quantise(value)
    arrays["meta"] = np.array(json.dumps({"format": FORMAT, **meta, "storage": storage}))

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
            np.savez(f, **arrays)

    atomic_write(path, write)


def stored_value(z, key):
    """A weight of an open decoder file as float32, whatever its storage."""
    value = z[key]
    if value.dtype == np.int8:
        return value.astype(np.float32) * z[f"{key}@scale"]
    return value.astype(np.float32)


def verify(path):
    """Check a decoder file against its folder's `models.json` when the folder has one.

    A folder of shipped models (the package's, or one a user made with `nst_tf.train.ship`) lists
    each file's SHA-256; a folder without the record (`nst_tf.train --out`) is not checked.

    Raises:
      WeightsError: the file is not listed, or its SHA-256 differs from the record's.
    """
    path = Path(path)
    record_path = path.parent / CHECKSUMS
    if not record_path.is_file():
        return
    try:
        listed = json.loads(record_path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"{record_path}: unreadable ({type(e).__name__}: {e}); reinstall nst_tf")
    if path.name not in listed:
        raise WeightsError(
            f"{path}: not listed in {record_path}; remove it, or ship it with nst_tf.train.ship"
        )
    digest = sha256_of(path)
    if digest != listed[path.name].get("sha256"):
        raise WeightsError(
            f"{path}: SHA-256 {digest[:12]}... differs from {record_path}'s "
            f"{str(listed[path.name].get('sha256'))[:12]}...: the file is damaged; reinstall nst_tf"
        )


def read_meta(path):
    """The `meta` dict written with a decoder file.

    Raises:
      WeightsError: `path` is not a decoder file of this project.
    """
    try:
        with np.load(str(path), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise WeightsError(f"{path}: not a readable decoder file ({type(e).__name__}: {e})")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a decoder file of nst_tf (format {FORMAT})")
    return meta


def tail_weights(path, level, widths=None):
    """The weights a decoder file gives the relu<level>_1 decoder: all of them when it is that level's;
    its whole network, the deeper decoder's tail (same names and shapes, dec<L'>_1 ... dec1_1), when
    it is a lower level's. The file is checked against its folder's record (`verify`).

    Returns:
      ({layer: (kernel, bias)} float32 in the plan's order, the file's level).

    Raises:
      WeightsError: unreadable, damaged, a deeper level's, or missing a layer.
    """
    verify(path)
    lower = read_meta(path).get("level", level)
    if lower not in LEVELS or lower > level:  # a deeper decoder's file holds a shallower one's layers too
        raise WeightsError(f"{Path(path)}: not the relu{level}_1 decoder (it is relu{lower}_1's)")
    try:
        with np.load(str(path), allow_pickle=False) as z:
            found = {
                name: (stored_value(z, f"{name}/kernel"), stored_value(z, f"{name}/bias"))
                for name, *_ in plan(lower, widths)
            }
    except (OSError, ValueError, KeyError) as e:
        raise WeightsError(f"{Path(path)}: not the relu{lower}_1 decoder of this encoder ({e})")
    return found, lower


def carried_stages(meta, part=None):
    """The training stages in a decoder file's `meta` (a run's file keeps them there, a shipped one in
    its provenance), each marked with `part` (the layer names it filled) when it filled only those;
    a stage that already filled a smaller part (the tail of the file's own tail) keeps its part."""
    stages = meta.get("stages") or meta.get("provenance", {}).get("stages") or []
    if part:
        stages = [{**s, "part": s.get("part") or f"{part[0]} ... {part[-1]}"} for s in stages]
    return stages
