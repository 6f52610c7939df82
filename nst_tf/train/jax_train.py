"""`python -m nst_tf.train.jax_train`: the fast methods' decoders trained with JAX, on a GPU machine
that has JAX but no TensorFlow (the lent device machines: docs/gpu_training.md).

The same networks, losses and files as `python -m nst_tf.train`, written again in JAX: the frozen
VGG-19 encoder (3x3 SAME convolutions + ReLU, 2x2 max pooling; conv1_1 in float32), the mirrored
decoder (reflection padding, nearest upsampling, the last convolution in float32), WCT's pixel +
feature loss (`nst_tf.methods.wct.training`), AdaIN's relative content + style loss
(`nst_tf.methods.adain.training`), each with the grid term (`nst_tf.nets.decoder.stride_grid`),
Keras' Adam, bfloat16 convolutions on float32 weights.
tests/test_jax_train.py checks each against the TensorFlow code on the same weights. The model
is a decoder file of this package with its training as one more stage of its record, so it goes on
with `python -m nst_tf.train --init_from FILE` and ships with `nst_tf.train.ship` like any other.

    python -m nst_tf.train.jax_train pack --data MANIFEST --to DIR      # here: VGG-19 and the images
    python -m nst_tf.train.jax_train train --pack DIR --method wct --level 5 --out OUT --seconds 400

Deviation from `nst_tf.train`'s data: each image is scaled once to SCALES short sides between the
crop and twice it, and a step's crops are drawn from those (tf.data draws any short side); no
tf.data, so the host keeps a GPU fed from a few hundred pictures held in memory.
"""

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from nst_tf.errors import SettingError, WeightsError, one_line_exit
from nst_tf.files import sha256_of, write_text
from nst_tf.nets import decoder_files as decoders
from nst_tf.nets.layers import CONV_LAYERS, layer_names
from nst_tf.train.options import STAGE_SETTINGS, flag_type

# The same as the TensorFlow code's (tests/test_jax_train.py checks that they stay the same).
MEANS = np.array([123.68, 116.779, 103.939], np.float32)  # nst_tf.images.MEANS
POOLING = "max"  # nst_tf.methods.wct.config.ENCODER_POOLING
FEATURE_WEIGHT = 1.0  # nst_tf.methods.wct.training.FEATURE_WEIGHT
GRID_WEIGHTS = {"wct": 1000.0, "adain": 1000.0}  # nst_tf.methods.<method>.training.GRID_WEIGHT
GRID_STRIDES = 4  # nst_tf.nets.decoder.GRID_STRIDES
STYLE_WEIGHT = 65.0  # nst_tf.train.options.STYLE_WEIGHT
ADAIN_EPS = 1e-5  # nst_tf.methods.wct.transforms.ADAIN_EPS
ADAIN_LEVEL, ADAIN_FILE = 4, "adain_decoder.npz"  # nst_tf.methods.adain.config
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1")  # nst_tf.methods.adain.training
ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}  # tf.keras.optimizers.Adam's defaults

PACK_VGG = "vgg19.npz"
PACK_DATA = "data"
SCALES = 8


# --- the networks and losses ----------------------------------------------------------------------


def _jax():
    import jax
    import jax.numpy as jnp

    return jax, jnp


def conv(x, kernel, padding):
    """A 3x3 stride-1 convolution of (n, H, W, C) by (3, 3, C, C')."""
    jax, _ = _jax()
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def encode(vgg, x, outputs, dtype):
    """{layer: float32 post-ReLU activation} of x, (n, H, W, 3) RGB minus MEANS, as `nst_tf.nets.vgg.
    build_vgg(weights, "max", outputs, precision)` gives them; stops at the deepest of `outputs`."""
    jax, jnp = _jax()
    names = layer_names(POOLING)
    found = {}
    for name in names[1 : max(names.index(n) for n in outputs) + 1]:
        if name.startswith("conv"):
            kernel, bias = vgg[name]
            kind = jnp.float32 if name == "conv1_1" else dtype  # as build_vgg: conv1_1 in float32
            x = jax.nn.relu(conv(x.astype(kind), kernel.astype(kind), "SAME") + bias.astype(kind))
        else:
            # -inf as a Python number: JAX then knows the max-pooling monoid and its gradient
            x = jax.lax.reduce_window(x, -np.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "SAME")
        if name in outputs:
            found[name] = x.astype(jnp.float32)
    return found


def decode(params, f, level, widths, dtype):
    """The relu<level>_1 decoder (`nst_tf.nets.decoder.build_decoder`) on features f: float32 pixels."""
    jax, jnp = _jax()
    x = f
    for name, _, _, upsample in decoders.plan(level, widths):
        last = name == "dec1_1"
        kind = jnp.float32 if last else dtype
        kernel, bias = params[name]
        x = jnp.pad(x.astype(kind), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        x = conv(x, kernel.astype(kind), "VALID") + bias.astype(kind)
        x = x if last else jax.nn.relu(x)
        if upsample:
            x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return x.astype(jnp.float32)


def init_decoder(level, widths, seed):
    """Glorot-uniform kernels and zero biases (Keras Conv2D's initialisers), float32 numpy."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, c_in, c_out, _ in decoders.plan(level, widths):
        limit = np.sqrt(6.0 / (9 * c_in + 9 * c_out))
        kernel = rng.uniform(-limit, limit, (3, 3, c_in, c_out)).astype(np.float32)
        params[name] = (kernel, np.zeros(c_out, np.float32))
    return params


def stride_grid(image, stride):
    """`nst_tf.nets.decoder.stride_grid`: the part of `image` repeating every `stride` px."""
    jax, jnp = _jax()
    low = jax.lax.reduce_window(image, 0.0, jax.lax.add, (1, stride, stride, 1), (1, 1, 1, 1), "VALID")
    low = low / (stride * stride)
    _, h, w, c = low.shape
    detail = image[:, stride // 2 : stride // 2 + h, stride // 2 : stride // 2 + w] - low
    h, w = h // stride * stride, w // stride * stride
    phases = jnp.mean(detail[:, :h, :w].reshape(-1, h // stride, stride, w // stride, stride, c), axis=(1, 3))
    return jnp.mean(jnp.square(phases - jnp.mean(phases, axis=(1, 2), keepdims=True)))


def wct_losses(params, vgg, x, level, widths, dtype, grid_weight=0.0):
    """`nst_tf.methods.wct.training.reconstruction_losses` of x's relu<level>_1 decoding."""
    jax, jnp = _jax()
    layer = decoders.level_layer(level)
    f = jax.lax.stop_gradient(encode(vgg, x, [layer], dtype)[layer])
    y = decode(params, f, level, widths, dtype)[:, : x.shape[1], : x.shape[2]]
    pixel = jnp.mean(jnp.square(y - x))
    feature = jnp.mean(jnp.square(encode(vgg, y, [layer], dtype)[layer] - f))
    out = {"total": pixel + FEATURE_WEIGHT * feature, "pixel": pixel, "feature": feature}
    if grid_weight > 0:
        out["grid"] = stride_grid(y - x, decoders.level_stride(level))
        out["total"] += grid_weight * out["grid"]
    return out


def channel_statistics(f):
    """Each image's channel means and (unbiased, + eps) standard deviations: (n, 1, 1, C) twice."""
    _, jnp = _jax()
    n = f.shape[1] * f.shape[2]
    mean = jnp.mean(f, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(f - mean), axis=(1, 2), keepdims=True)
    return mean, jnp.sqrt(var * n / max(n - 1, 1) + ADAIN_EPS)


def adain(content_f, style_f):
    (mc, sc), (ms, ss) = channel_statistics(content_f), channel_statistics(style_f)
    return (content_f - mc) / sc * ss + ms


def adain_losses(params, vgg, c, s, widths, dtype, style_weight, grid_weight=0.0):
    """`nst_tf.methods.adain.training.DecoderTraining.losses` of contents c and styles s."""
    jax, jnp = _jax()
    layers = list(STYLE_LAYERS)
    top = decoders.level_layer(ADAIN_LEVEL)
    c_f = jax.lax.stop_gradient(encode(vgg, c, layers, dtype)[top])
    s_f = jax.lax.stop_gradient(encode(vgg, s, layers, dtype))
    t = adain(c_f, s_f[top])
    g = decode(params, t, ADAIN_LEVEL, widths, dtype)[:, : c.shape[1], : c.shape[2]]
    g_f = encode(vgg, g, layers, dtype)
    content = jnp.mean(jnp.square(g_f[top] - t)) / (jnp.mean(jnp.square(t)) + 1e-12)
    style = 0.0
    for layer in layers:
        (m, sd), (ms, ss) = channel_statistics(g_f[layer]), channel_statistics(s_f[layer])
        distance = jnp.mean(jnp.square(m - ms)) + jnp.mean(jnp.square(sd - ss))
        style = style + distance / (jnp.mean(jnp.square(s_f[layer])) + 1e-12)
    out = {"total": content + style_weight * style, "content": content, "style": style}
    if grid_weight > 0:
        energy = jnp.mean(jnp.square(c)) + 1e-12
        out["grid"] = stride_grid(g, decoders.level_stride(ADAIN_LEVEL)) / energy
        out["total"] += grid_weight * out["grid"]
    return out


def adam_update(params, moments, gradients, step, learning_rate):
    """Keras' Adam: (new params, new moments) after step `step` (1-based)."""
    jax, jnp = _jax()
    b1, b2, eps = ADAM["beta_1"], ADAM["beta_2"], ADAM["epsilon"]
    alpha = learning_rate * jnp.sqrt(1 - b2**step) / (1 - b1**step)
    m, v = moments
    m = jax.tree_util.tree_map(lambda m, g: m + (g - m) * (1 - b1), m, gradients)
    v = jax.tree_util.tree_map(lambda v, g: v + (jnp.square(g) - v) * (1 - b2), v, gradients)
    params = jax.tree_util.tree_map(lambda p, m, v: p - m * alpha / (jnp.sqrt(v) + eps), params, m, v)
    return params, (m, v)


# --- the pack: what the GPU machine needs, without TensorFlow ------------------------------------


def pack(manifest, to, weights_path=None, kinds=("photo", "style"), log=print):
    """Write DIR/vgg19.npz (the encoder's layers to conv5_1, exact: a k-means quantised kernel as its
    value table and uint8 indices) and DIR/data/ (the manifest, unchanged, and its train split's files)."""
    from nst_tf.nets import weights

    vgg = weights.resolve_weights(weights_path, log=log)
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name in CONV_LAYERS[: CONV_LAYERS.index("conv5_1") + 1]:
        kernel, bias = (np.asarray(a, np.float32) for a in vgg.layers[name])
        table, index = np.unique(kernel, return_inverse=True)
        if len(table) <= 256:
            arrays[f"{name}/table"], arrays[f"{name}/index"] = (
                table,
                index.reshape(kernel.shape).astype(np.uint8),
            )
        else:
            arrays[f"{name}/kernel"] = kernel
        arrays[f"{name}/bias"] = bias
    encoder = {"source": vgg.source, "path": str(vgg.path), "sha256": vgg.sha256, "pooling": POOLING}
    arrays["encoder"] = np.array(json.dumps(encoder))
    with open(to / PACK_VGG, "wb") as f:
        np.savez_compressed(f, **arrays)
    manifest = Path(manifest)
    data = to / PACK_DATA
    data.mkdir(exist_ok=True)
    shutil.copyfile(manifest, data / "manifest.json")
    records = json.loads(manifest.read_text())["files"]
    for r in records:
        if r["kind"] in kinds and r["split"] == "train":
            (data / r["file"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(manifest.parent / r["file"], data / r["file"])
    size = sum(p.stat().st_size for p in to.rglob("*") if p.is_file())
    log(f"{to}: VGG-19 to conv5_1 and {len(list(data.rglob('*.jpg')))} images, {size / 2**20:.1f} MiB")


def read_pack_vgg(path):
    """({layer: (kernel, bias)} float32, the encoder record) of a pack's vgg19.npz."""
    with np.load(path, allow_pickle=False) as z:
        layers = {}
        for name in CONV_LAYERS:
            if f"{name}/bias" not in z:
                break
            if f"{name}/table" in z:
                kernel = z[f"{name}/table"][z[f"{name}/index"]]
            else:
                kernel = z[f"{name}/kernel"]
            layers[name] = (kernel.astype(np.float32), z[f"{name}/bias"].astype(np.float32))
        return layers, json.loads(str(z["encoder"]))


# --- the data -------------------------------------------------------------------------------------


class Crops:
    """Random crops of a manifest's train split of one kind, from each image at SCALES sizes in memory."""

    def __init__(self, manifest, kind, crop, seed):
        manifest = Path(manifest)
        records = json.loads(manifest.read_text())["files"]
        paths = [manifest.parent / r["file"] for r in records if r["kind"] == kind and r["split"] == "train"]
        if not paths:
            raise SettingError("data", f"lists no {kind} in the train split", manifest)
        self.crop, self.rng = crop, np.random.default_rng(seed)
        self.images = [self.scaled(path, crop) for path in paths]

    @staticmethod
    def scaled(path, crop):
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.load()
        out = []
        for short in np.linspace(crop, 2 * crop, SCALES).round().astype(int):
            factor = short / min(image.size)
            size = tuple(max(crop, round(side * factor)) for side in image.size)
            out.append(np.asarray(image.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)))
        return out

    def batch(self, n):
        """(n, crop, crop, 3) float32 RGB 0-255."""
        picks = []
        for i in self.rng.integers(0, len(self.images), n):
            image = self.images[i][self.rng.integers(0, SCALES)]
            y = self.rng.integers(0, image.shape[0] - self.crop + 1)
            x = self.rng.integers(0, image.shape[1] - self.crop + 1)
            cut = image[y : y + self.crop, x : x + self.crop]
            picks.append(cut[:, ::-1] if self.rng.random() < 0.5 else cut)
        return np.stack(picks).astype(np.float32)


# --- training -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Options:
    method: str = "wct"
    level: int | None = None
    pack: str = ""
    out: str = ""
    iterations: int = 15000
    seconds: float = 0.0  # stop after this much training time too (0: no limit)
    batch_size: int = 8
    learning_rate: float = 1e-4
    lr_decay: float = 0.0  # the rate at step t (0-based): learning_rate / (1 + lr_decay t), as the TF loop
    crop: int = 256
    precision: str = "bfloat16"
    style_weight: float = STYLE_WEIGHT
    grid_weight: float | None = None  # None: the method's GRID_WEIGHTS
    seed: int = 0
    init_from: str | None = None
    save_every: int = 1000
    log_every: int = 100
    storage: str = (
        "float32"  # of the model file's kernels: float16 halves it (the device returns <= 16 MiB a file)
    )

    def validate(self):
        if self.method not in ("wct", "adain"):
            raise SettingError("method", "must be wct or adain", self.method)
        if self.method == "wct" and self.level not in decoders.LEVELS:
            raise SettingError("level", "must be 1..5 (the decoder after relu1_1 ... relu5_1)", self.level)
        if self.method == "adain" and self.level not in (None, ADAIN_LEVEL):
            raise SettingError(
                "level", "AdaIN has one decoder, after relu4_1: leave {setting} out", self.level
            )
        if self.crop < 16 or self.crop % 16:
            raise SettingError("crop", "must be a multiple of 16", self.crop)
        if not 0.0 <= self.lr_decay < float("inf"):
            raise SettingError("lr_decay", "must be 0 (a constant rate) or more", self.lr_decay)
        if self.precision not in ("float32", "bfloat16"):
            raise SettingError("precision", "must be float32 or bfloat16", self.precision)
        if self.grid_weight is not None and not 0.0 <= self.grid_weight < float("inf"):
            raise SettingError("grid_weight", "must be 0 (none) or more", self.grid_weight)
        if self.grid_weight and self.model_level == 1:
            raise SettingError(
                "grid_weight",
                "relu1_1's decoder does not upsample, so it leaves no grid: give 0",
                self.grid_weight,
            )
        if self.grid_weight and self.crop < GRID_STRIDES * decoders.level_stride(self.model_level):
            why = f"must be at least {GRID_STRIDES} strides of the decoder for the grid term"
            raise SettingError("crop", why + " (or give --grid_weight 0)", self.crop)
        if self.storage not in decoders.STORAGES:
            raise SettingError("storage", f"must be one of {', '.join(decoders.STORAGES)}", self.storage)
        if not (Path(self.pack) / PACK_VGG).is_file():
            raise SettingError("pack", f"holds no {PACK_VGG}: make it with the pack command", self.pack)
        return self

    @property
    def model_level(self):
        return ADAIN_LEVEL if self.method == "adain" else self.level

    @property
    def run_name(self):
        return "adain" if self.method == "adain" else f"wct_relu{self.level}_1"

    @property
    def model_file(self):
        return ADAIN_FILE if self.method == "adain" else decoders.decoder_file(self.level)


def start_from(path, level, widths, params):
    """`params` with a decoder file's weights (`decoder_files.tail_weights`: the same level's whole,
    a lower level's as the tail); returns (params, the file's stages, marked when only a part)."""
    weights, lower = decoders.tail_weights(path, level, widths)
    for name, (kernel, bias) in weights.items():
        if kernel.shape != params[name][0].shape:
            raise WeightsError(f"{path}: {name} has {kernel.shape}, expected {params[name][0].shape}")
        params[name] = (kernel, bias)
    part = list(weights) if lower < level else None
    return params, decoders.carried_stages(decoders.read_meta(path), part)


def device_name():
    jax, _ = _jax()
    device = jax.devices()[0]
    return f"{getattr(device, 'device_kind', device.platform)} (JAX {jax.__version__}, {device.platform})"


class Run:
    """A training's networks, data and jitted step; `save` writes the model file and losses.csv."""

    def __init__(self, options):
        jax, jnp = _jax()
        if options.grid_weight is None:  # relu1_1's decoder does not upsample: no grid term
            default = GRID_WEIGHTS[options.method] if options.model_level != 1 else 0.0
            options = dataclasses.replace(options, grid_weight=default)
        self.options = options.validate()
        vgg, self.encoder = read_pack_vgg(Path(options.pack) / PACK_VGG)
        widths = decoders.widths_of(vgg)
        self.level, self.earlier = options.model_level, []
        params = init_decoder(self.level, widths, options.seed)
        if options.init_from:
            params, self.earlier = start_from(options.init_from, self.level, widths, params)
        manifest = Path(options.pack) / PACK_DATA / "manifest.json"
        kinds = ("photo", "style") if options.method == "adain" else ("photo",)
        self.streams = [Crops(manifest, kind, options.crop, options.seed + i) for i, kind in enumerate(kinds)]
        self.data_sha = sha256_of(manifest)
        adain = options.method == "adain"
        self.names = ("total", "content", "style") if adain else ("total", "pixel", "feature")
        self.names += ("grid",) if options.grid_weight > 0 else ()
        grid_weight = options.grid_weight
        self.params = jax.tree_util.tree_map(jnp.asarray, params)
        self.moments = (jax.tree_util.tree_map(jnp.zeros_like, self.params),) * 2
        vgg, dtype = jax.tree_util.tree_map(jnp.asarray, vgg), getattr(jnp, options.precision)

        def total(p, *batch):
            batch = [b - MEANS for b in batch]
            if adain:
                parts = adain_losses(p, vgg, *batch, widths, dtype, options.style_weight, grid_weight)
            else:
                parts = wct_losses(p, vgg, *batch, self.level, widths, dtype, grid_weight)
            return parts["total"], parts

        def step(p, moments, i, *batch):
            (_, parts), gradients = jax.value_and_grad(total, has_aux=True)(p, *batch)
            rate = options.learning_rate / (1 + options.lr_decay * (i - 1))
            p, moments = adam_update(p, moments, gradients, i, rate)
            return p, moments, parts

        self.step = jax.jit(step)

    def save(self, done, seconds, rows):
        """The model file (its record: the starting file's stages and this one) and losses.csv."""
        o = self.options
        stage = {"run": o.run_name, "steps": done, "seconds": round(seconds), "data_sha256": self.data_sha}
        stage |= {"cpu": device_name(), **{k: getattr(o, k) for k in STAGE_SETTINGS if hasattr(o, k)}}
        meta = {"method": o.method, "level": self.level, "encoder": self.encoder, "steps": done}
        meta |= {"data_sha256": self.data_sha, "run": o.run_name, "stages": [*self.earlier, stage]}
        weights = {f"{n}/kernel": np.asarray(k) for n, (k, _) in self.params.items()}
        weights |= {f"{n}/bias": np.asarray(b) for n, (_, b) in self.params.items()}
        out = Path(o.out)
        decoders.write_arrays(weights, out / o.model_file, meta, o.storage)
        lines = ["iteration," + ",".join(self.names) + ",seconds", *(",".join(map(str, r)) for r in rows)]
        write_text(out / f"{o.run_name}_losses.csv", "\n".join(lines) + "\n")


def train(options, log=print):
    """Train `options`' decoder until `iterations` steps or `seconds` of training; returns the model
    file's path (also written every `save_every` steps). The first step compiles and is not timed."""
    jax, _ = _jax()
    run = Run(options)
    Path(options.out).mkdir(parents=True, exist_ok=True)
    log(f"Training {options.run_name} on {device_name()}: {options.precision}, batch {options.batch_size}")
    rows, pending, done, seconds, start = [], [], 0, 0.0, None
    while done < options.iterations and not (options.seconds and seconds >= options.seconds):
        batch = [s.batch(options.batch_size) for s in run.streams]
        tick = time.perf_counter()
        run.params, run.moments, parts = run.step(run.params, run.moments, done + 1, *batch)
        done += 1
        if start is None:
            jax.block_until_ready(parts)
            start = time.perf_counter()
            log(f"compiled in {start - tick:.1f} s")
            continue
        pending.append((done, parts))
        if done % options.log_every == 0 or done == options.iterations:
            jax.block_until_ready(parts)  # the values are read only here: the steps run ahead meanwhile
            seconds = time.perf_counter() - start
            per = seconds / (done - 1)
            rows += [(i, *(float(p[n]) for n in run.names), round(per, 5)) for i, p in pending]
            pending = []
            shown = ", ".join(f"{n} {v:.4g}" for n, v in zip(run.names, rows[-1][1:]))
            log(f"[{done}/{options.iterations}] {shown}  {per * 1000:.1f} ms/it")
        if done % options.save_every == 0:
            run.save(done, seconds, rows)
    jax.block_until_ready(run.params)
    seconds = time.perf_counter() - start if start else 0.0
    rows += [(i, *(float(p[n]) for n in run.names), "") for i, p in pending]  # stopped between reports
    run.save(done, seconds, rows)
    log(f"Done: {Path(options.out) / options.model_file} after {done} steps, {seconds:.0f} s")
    return Path(options.out) / options.model_file


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m nst_tf.train.jax_train", description=__doc__.splitlines()[0]
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser(
        "pack", help="here: the encoder's weights and the training images, for the GPU machine"
    )
    p.add_argument("--data", required=True, help="manifest.json of python -m nst_tf.data.assemble")
    p.add_argument("--to", required=True, help="the folder to write (carry it to the GPU machine)")
    p.add_argument("--weights", help="VGG-19 weights (default: the embedded default)")
    t = verbs.add_parser("train", help="there: train a decoder with JAX")
    for field in dataclasses.fields(Options):
        t.add_argument(f"--{field.name}", type=flag_type(field), default=field.default)
    args = parser.parse_args(argv)
    with one_line_exit():
        if args.verb == "pack":
            pack(args.data, args.to, args.weights)
        else:
            train(Options(**{k: v for k, v in vars(args).items() if k != "verb"}))


if __name__ == "__main__":
    main()
