"""The optimisation's memory budget: what a step needs per pixel, and the tile size that fits."""

import os

import tensorflow as tf

from nst_tf.errors import SettingError
from nst_tf.methods.gatys import tiling

# Peak memory of the optimisation, by precision, measured by bench/memory.py (bench/results/memory.json,
# least squares over 3 untiled and 4 tiled runs each) with about 25% headroom on top. Measured:
# - an untiled step (VGG-19 forward + backward to conv5_1, the Gram matrices, Adam), per image pixel:
#   float32 2202, bfloat16 1883 (bfloat16 saves less than half: conv1_1, the returned activations and
#   the Gram matrices stay float32);
# - a tiled step, per pixel of one tile (core plus margins; eager, so more than a pixel of the fused
#   step): float32 3124, bfloat16 2911; and per image pixel for the whole-image arrays (image, Adam's
#   moments, the gradient, the content activations): float32 224, bfloat16 150;
# - on top of either, 100-131 MiB that do not grow with the size, and what the first step pages in
#   (TensorFlow's and oneDNN's kernels: resident only once they run), so 384 MiB in all. A 768x576
#   run under 1.5 GiB with 256 MiB here peaked 2 MiB over its budget once, in a busy test session.
BYTES_PER_PIXEL = {"float32": 2800, "bfloat16": 2400}
TILE_BYTES_PER_PIXEL = {"float32": 3900, "bfloat16": 3600}
WHOLE_IMAGE_BYTES_PER_PIXEL = 300
STEP_OVERHEAD = 384 * 2**20
MIN_TILE = 4 * tiling.ALIGN

GPU_BUDGET = 8 * 2**30  # TensorFlow does not report a GPU's size; --max_memory sets it


def available_memory():
    """Bytes of memory the run may use by default: half the available RAM, or on a GPU
    `GPU_BUDGET` (TensorFlow's memory info is usage so far, not the card's size)."""
    if tf.config.list_physical_devices("GPU"):
        return GPU_BUDGET
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024 // 2
    except (OSError, KeyError, ValueError):
        return 4 * 2**30


def budget_bytes(settings):
    """The memory budget in bytes: `max_memory` GiB if given, else `available_memory()`."""
    return settings.max_memory * 2**30 if settings.max_memory else available_memory()


def resident_bytes():
    """This process's resident memory now (Python, TensorFlow, the weights, the images)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 2**30  # a typical TensorFlow process with VGG-19 loaded


def peak_resident_bytes():
    """This process's peak resident memory so far: VmHWM, its address space's high-water mark.

    Not `ru_maxrss`: Linux carries that across exec, so a run started from a large process (a test
    runner, a notebook's kernel) reports its parent's peak (measured: 2.0 GiB in a child that held
    11 MB, started from a process holding 2 GiB).
    """
    try:
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def tile_core(config, shape, styles, precision="float32", resident=None, count=1):
    """The tile core size to use (0: untiled), from `tile_size` or from the memory budget.

    The budget (`max_memory`, else `available_memory()`) is for the whole process: what it holds
    already (`resident`, default `resident_bytes()`) plus the optimisation's peak (the per-pixel
    costs above). On a GPU the activations live on the card, so the process's resident size does
    not count. `count` images of `shape` are optimised together.

    Raises:
      SettingError: `max_memory` is too small for even the smallest tile of this image.
    """
    if config.tile_size:
        return config.tile_size
    budget = budget_bytes(config)
    if tf.config.list_physical_devices("GPU"):
        resident = 0
    elif resident is None:
        resident = resident_bytes()
    fixed = resident + STEP_OVERHEAD
    largest = max([count * shape[0] * shape[1]] + [s.shape[1] * s.shape[2] for s in styles])
    untiled = fixed + largest * BYTES_PER_PIXEL[precision]
    if untiled <= budget:
        return 0
    layers = [layer for layer, _ in config.content_layers + config.style_layers]
    margin = tiling.margin_for(layers)
    room = budget - fixed - largest * WHOLE_IMAGE_BYTES_PER_PIXEL
    side = int((max(room, 0) / TILE_BYTES_PER_PIXEL[precision]) ** 0.5) - 2 * margin
    core = side // tiling.ALIGN * tiling.ALIGN
    if core >= MIN_TILE:
        return core
    if config.max_memory:
        tiled = (
            fixed
            + largest * WHOLE_IMAGE_BYTES_PER_PIXEL
            + (MIN_TILE + 2 * margin) ** 2 * TILE_BYTES_PER_PIXEL[precision]
        )
        need = min(untiled, tiled)
        raise SettingError(
            "max_memory",
            f"a {shape[1]}x{shape[0]} run needs at least {need / 2**30:.2f} GiB here "
            f"({resident / 2**30:.2f} GiB are in use before it starts); give more",
            f"{config.max_memory:g}",
        )
    return MIN_TILE
