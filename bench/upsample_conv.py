"""The decoders' upsampling fused into the convolution after it (`nets.decoder.UpsampleConv2D`)
against the three plain layers it replaces, per layer, per decoder and in WCT's and AdaIN's engines.

Usage (from the repository root):

    .venv/bin/python bench/upsample_conv.py      # ~4 min idle

The peer is the decoders as they were built before: keras' nearest-neighbour `UpSampling2D`, the
reflection padding (`ReflectionPad2D`) and a 3x3 `Conv2D`, with the same weights. Ours replaces the
three with `UpsampleConv2D`: four 2x2 convolutions on the low-resolution input, interleaved (16/36
of the multiplications). Both sides interleaved, in one process, bfloat16 where native
(`precision.resolve("auto")`):

- `layers`: each upsampling convolution of VGG-19's decoders at a 512x512 output (512 channels at
  64x64 ... 64 at 512x512), random weights;
- `decoders`: the package's shipped decoders relu2_1 ... relu5_1 decoding a 512x512 image's
  features (the largest relative difference between the two sides' outputs is recorded too);
- `engines`: `--method wct` (five levels, a new style every image) and `--method adain` at 512x512,
  the peer's engine built with the plain decoders.

Prints each side's median seconds and the peer's over ours; writes bench/results/upsample_conv.json.
"""

import bench_step  # first: sets the thread environment before TensorFlow loads  # isort: skip

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import contention  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from nst_tf import images, precision  # noqa: E402
from nst_tf.methods import base, get  # noqa: E402
from nst_tf.methods.adain.config import DEFAULT_DECODER_DIR as ADAIN_DIR  # noqa: E402
from nst_tf.methods.adain.config import AdaINSettings  # noqa: E402
from nst_tf.methods.wct.config import DEFAULT_DECODER_DIR, WCTSettings  # noqa: E402
from nst_tf.nets import decoder as decoders  # noqa: E402
from nst_tf.nets import weights  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "upsample_conv.json"
SIZE = 512


def log(message):
    print(f"[upsample_conv] {message}", file=sys.stderr, flush=True)


def build_plain(level, widths=None, precision="float32"):
    """The peer: `decoders.build_decoder` as it was, upsampling, padding and convolution apart."""
    policy = "mixed_bfloat16" if precision == "bfloat16" else "float32"
    steps = decoders.plan(level, widths)
    features = tf.keras.Input(shape=(None, None, steps[0][1]))
    x = features
    for name, _, out, upsample in steps:
        last = name == "dec1_1"
        dtype = "float32" if last else policy
        x = decoders.ReflectionPad2D(name=f"{name}_pad", dtype=dtype)(x)
        x = tf.keras.layers.Conv2D(out, 3, activation=None if last else "relu", name=name, dtype=dtype)(x)
        if upsample:
            x = tf.keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up", dtype=policy)(x)
    return tf.keras.Model(features, x)


@contextlib.contextmanager
def plain_decoders():
    """Inside the block every decoder the package builds is the peer's."""
    original = decoders.build_decoder
    decoders.build_decoder = build_plain
    try:
        yield
    finally:
        decoders.build_decoder = original


def interleaved(sides, rounds):
    """{name: [seconds]} of calling each of `sides` ({name: fn}) in turn, `rounds` times, after one
    untimed call each."""
    for fn in sides.values():
        fn()
    seconds = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def summary(seconds):
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    return {
        **{name: {"median": medians[name], "seconds": s} for name, s in seconds.items()},
        "plain_over_fused": medians["plain"] / medians["fused"],
    }


def time_layers(kind, rounds):
    rows = []
    for block, channels in ((4, 512), (3, 256), (2, 128), (1, 64)):  # the convolution after each upsampling
        side = SIZE >> block  # its input's side
        x = tf.random.stateless_normal([1, side, side, channels], [block, 0])
        dtype = "mixed_bfloat16" if kind == "bfloat16" else "float32"
        fused = decoders.UpsampleConv2D(channels, activation="relu", dtype=dtype)
        fused.build(x.shape)
        conv = tf.keras.layers.Conv2D(channels, 3, activation="relu", dtype=dtype)
        conv.build((None, None, None, channels))
        conv.set_weights(fused.get_weights())
        pad = decoders.ReflectionPad2D(dtype=dtype)
        up = tf.keras.layers.UpSampling2D(2, interpolation="nearest", dtype=dtype)
        sides = {
            "fused": tf.function(lambda x=x, fused=fused: fused(x)),
            "plain": tf.function(lambda x=x, conv=conv, pad=pad, up=up: conv(pad(up(x)))),
        }
        row = summary(interleaved({k: lambda f=f: f().numpy() for k, f in sides.items()}, rounds))
        rows.append({"input": [side, side, channels], "output": [2 * side, 2 * side, channels], **row})
        log(f"layer {side}^2 x {channels}: x{row['plain_over_fused']:.2f}")
    return rows


def time_decoders(vgg_weights, kind, rounds):
    widths = decoders.widths_of(vgg_weights.layers)
    rows = []
    for level in (5, 4, 3, 2):
        path = DEFAULT_DECODER_DIR / decoders.decoder_file(level)
        fused = decoders.load_decoder(path, level, widths, kind)
        with plain_decoders():
            plain = decoders.load_decoder(path, level, widths, kind)
        side = SIZE >> (level - 1)
        f = tf.nn.relu(tf.random.stateless_normal([1, side, side, widths[level]], [level, 1]))
        sides = {
            "fused": tf.function(lambda m=fused, f=f: m(f)),
            "plain": tf.function(lambda m=plain, f=f: m(f)),
        }
        a, b = (sides[k]().numpy() for k in ("fused", "plain"))
        row = summary(interleaved({k: lambda g=g: g().numpy() for k, g in sides.items()}, rounds))
        row["largest_difference_over_range"] = float(np.abs(a - b).max() / (b.max() - b.min()))
        rows.append({"level": level, **row})
        log(f"decoder relu{level}_1: x{row['plain_over_fused']:.2f}")
    return rows


def time_engines(vgg_weights, kind, rounds):
    shared = bench_step.SHARED_IMAGES
    content = images.resize_to(images.load_image(shared / "tubingen.jpg"), SIZE, SIZE)
    style = images.resize_to(images.load_image(shared / "starry_night.jpg"), SIZE, SIZE)
    rows = []
    for method, settings_class, folder in (
        ("wct", WCTSettings, DEFAULT_DECODER_DIR),
        ("adain", AdaINSettings, ADAIN_DIR),
    ):
        settings = settings_class(width=SIZE, height=SIZE, decoder=str(folder), precision=kind)
        engine = get(method).engine(settings, vgg_weights)
        with plain_decoders():
            peer = get(method).engine(settings, vgg_weights)
        inputs = base.prepare_inputs(content, engine.prepare_style([style]), settings)

        def stylise(e, inputs=inputs, settings=settings):
            e.style_cache.clear()  # a new style every image
            return e.stylise(inputs, settings)

        sides = {"fused": lambda e=engine: stylise(e), "plain": lambda e=peer: stylise(e)}
        row = summary(interleaved(sides, rounds))
        rows.append({"method": method, **row})
        log(f"{method}: {row['plain']['median']:.3f} -> {row['fused']['median']:.3f} s")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed calls per side (layers, decoders)")
    parser.add_argument("--engine_rounds", type=int, default=5, help="timed images per side (engines)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    bench_step.configure_tf_threads()
    started = datetime.datetime.now(datetime.timezone.utc)
    kind = precision.resolve("auto")
    vgg_weights = weights.embedded_default()
    with contention.Meter() as meter:
        layers = time_layers(kind, args.rounds)
        decoder_rows = time_decoders(vgg_weights, kind, args.rounds)
        engines = time_engines(vgg_weights, kind, args.engine_rounds)
    record = {
        "bench": "upsample_conv",
        "started": started.isoformat(timespec="seconds"),
        "precision": kind,
        "machine": bench_step.machine_info(),
        "others_cpu": meter.others,
        "layers": layers,
        "decoders": decoder_rows,
        "engines": engines,
    }
    bench_step.write_json(args.out, record)
    print("| 512x512, bfloat16 where native | plain s | fused s | plain / fused |")
    print("| --- | --- | --- | --- |")
    for name, row in (
        *((f"layer {r['input'][0]}^2 x {r['input'][2]} -> {r['output'][0]}^2", r) for r in layers),
        *((f"decoder relu{r['level']}_1", r) for r in decoder_rows),
        *((f"{r['method']} engine", r) for r in engines),
    ):
        plain, fused = row["plain"]["median"], row["fused"]["median"]
        print(f"| {name} | {plain:.3f} | {fused:.3f} | {row['plain_over_fused']:.2f} |")
    print(f"others' CPU share {meter.others:.2f}; written to {args.out}")


if __name__ == "__main__":
    main()
