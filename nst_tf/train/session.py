"""A training run in its folder: checkpoints, losses.csv, preview grids, provenance.json and the model.

`train(options)` starts a run in `<out>/<run name>/` (`wct_relu3_1`, say) and writes the trained
network to `<out>/<model file>` (`decoder_relu3_1.npz`), so one `--out` folder collects every
level's model and serves as `--decoder`. Ctrl-C or SIGTERM stops it after the step in progress,
everything saved; `resume(options, given)` continues the same run, step for step. Every file is
written whole (temporary name, then rename); losses.csv every `log_every` steps, the rest every
`save_every`.
"""

import contextlib
import csv
import dataclasses
import io
import json
import os
import platform
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from nst_tf import files, images, precision
from nst_tf.app import report, single
from nst_tf.data import pipeline
from nst_tf.errors import SettingError, SettingsMentionedError, WeightsError
from nst_tf.nets import decoder as decoders
from nst_tf.nets import weights
from nst_tf.train import tasks
from nst_tf.train.loop import Trainer
from nst_tf.train.options import RESUMABLE_CHANGES, STAGE_SETTINGS

SETTINGS_JSON = "settings.json"
LOSSES_CSV = "losses.csv"
PROVENANCE_JSON = "provenance.json"
PREVIEW_DIR = "previews"
PREVIEW_PHOTOS = 4


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the run after saving it; `run_dir` is where it can go on from."""

    def __init__(self, message, run_dir):
        super().__init__(message)
        self.run_dir = run_dir


@dataclasses.dataclass
class Run:
    """A run being trained: its settings, folder, trainer, rows of losses.csv and provenance record."""

    options: object
    run_dir: Path
    model_path: Path
    trainer: Trainer
    rows: list
    record: dict
    previews: np.ndarray


def writable_out(path):
    """`path` created if needed and proven writable; SettingError naming `out` otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise SettingError(
            "out", f"{{setting}} {path} is not a writable folder ({e.strerror}); choose another"
        )
    return path


def run_folder(options):
    """(task entry, run folder) that `options` name (method, level, out), the folder writable."""
    entry = tasks.get(options.method)
    name = entry.run_name(options)
    if not options.out:
        raise SettingError("out", "{setting} is required")
    return entry, writable_out(options.out) / name


def check_data(path):
    """The SHA-256 of a manifest listing training photos; SettingError naming `data` otherwise."""
    try:
        pipeline.manifest_files(path)
    except SettingError as e:
        raise SettingError("data", e.why, e.value)  # the pipeline's `manifest` is our --data
    return files.sha256_of(path)


def train(options, log=print, show=None):
    """Train a new run of `options` (a `TrainOptions`); returns the trained model's path.

    Raises:
      SettingError: bad settings, a missing manifest, an unwritable `out`, or a run already there.
      Interrupted: Ctrl-C or SIGTERM, after saving the run.
    """
    options.validate()
    entry, run_dir = run_folder(options)
    data_sha = check_data(options.data)
    latest = report.latest_checkpoint(run_dir)
    if latest is not None:
        why = f"{{setting}} {options.out} already holds this run ({latest[1]} steps in {run_dir})"
        raise SettingError("out", f"{why}; add --resume to continue it, or choose another folder")
    run_dir.mkdir(exist_ok=True)
    used, why = precision.describe(options.precision)
    options = dataclasses.replace(options, precision=used)  # auto is decided once, here, and kept
    if options.grid_weight is None:  # the method's default, kept with the run's settings
        options = dataclasses.replace(options, grid_weight=entry.grid_weight(options))
    saved = {"settings": dataclasses.asdict(options), "data_sha256": data_sha, "precision_reason": why}
    files.write_text(run_dir / SETTINGS_JSON, json.dumps(saved, indent=1) + "\n")
    run = open_run(entry, options, run_dir, log, {"precision": {"used": used, "reason": why}, "sessions": []})
    return go(run, log, show)


def resume(options, given=(), log=print, show=None):
    """Continue the run that `options` names (method, level, out) from its last saved state.

    The run keeps its saved settings; of `given` (the settings the caller set), those in
    `RESUMABLE_CHANGES` apply, the others must equal the saved ones (`data` may have moved).
    """
    entry, run_dir = run_folder(options)
    latest = report.latest_checkpoint(run_dir)
    if latest is None:
        where = f"{run_dir}/{report.CHECKPOINT_DIR}/latest.json"
        raise SettingError("resume", f"no saved state ({where} is missing); start without it")
    saved = json.loads((run_dir / SETTINGS_JSON).read_text())
    saved["settings"].setdefault("grid_weight", 0.0)  # a run saved before the grid term trained without it
    merged = resumed_options(type(options)(**saved["settings"]), options, given, saved["data_sha256"])
    run = open_run(entry, merged, run_dir, log, read_provenance(run_dir), latest[0])
    log(f"Resuming {run_dir.name} after step {int(run.trainer.done)} of {merged.iterations}")
    return go(run, log, show)


def resumed_options(saved, options, given, saved_sha):
    """The saved settings with the given resumable changes; SettingError for any other change."""
    changes = {}
    for name in given:
        value = getattr(options, name)
        if name in RESUMABLE_CHANGES or (name == "data" and check_data(value) == saved_sha):
            changes[name] = value  # data: the same manifest, moved
        elif name == "data":
            raise SettingError(
                "data", "is not the manifest this run started with (its SHA-256 differs)", value
            )
        elif value != getattr(saved, name):
            raise SettingError(name, f"{{setting}} was {getattr(saved, name)} in this run; --resume keeps it")
    if "data" not in changes and check_data(saved.data) != saved_sha:
        raise SettingError("data", "changed since the run started; give the same photos", saved.data)
    return dataclasses.replace(saved, **changes).validate()


def open_run(entry, options, run_dir, log, record, prefix=None):
    """Build the task and its trainer (seeded), restored from `prefix` when resuming."""
    vgg_weights = weights.resolve_weights(options.weights, log=log)
    tf.keras.utils.set_random_seed(options.seed)
    task = entry.build(options, vgg_weights, options.precision)
    trainer = Trainer(task, options)
    rows = []
    if prefix is not None:
        trainer.restore(prefix)
        rows = [row for row in read_losses(run_dir / LOSSES_CSV) if row[0] <= int(trainer.done)]
    elif options.init_from:
        record["init_from"] = start_from(task, options.init_from)
    model_path = Path(options.out) / task.model_file
    record.setdefault("sessions", []).append({"started": now(), "from_step": int(trainer.done)})
    return Run(options, run_dir, model_path, trainer, rows, record, preview_photos(options))


def start_from(task, path):
    """Load a trained model file into the task's network before the first step (`init_from`);
    returns its record for provenance.json. SettingError naming `init_from` if it does not fit."""
    try:
        part = task.load(path)  # the layers loaded, when the file fills only part of the network
        meta = decoders.read_meta(path)
    except (WeightsError, OSError) as e:
        raise SettingError("init_from", f"{{setting}}: {e}")
    earlier = decoders.carried_stages(meta, part)
    return {"path": str(path), "sha256": files.sha256_of(path), "stages": earlier}


def stages(run):
    """The training behind the run's network: the stages of the model it started from (`init_from`;
    a run continued in a later session with other settings), then this run's own."""
    options, trainer = run.options, run.trainer
    own = {
        "run": run.run_dir.name,
        "steps": int(trainer.done),
        "seconds": round(float(trainer.seconds)),
        "data_sha256": files.sha256_of(options.data),
        "cpu": cpu_name(),
        **{k: getattr(options, k) for k in STAGE_SETTINGS},
    }
    return [*run.record.get("init_from", {}).get("stages", []), own]


@contextlib.contextmanager
def deferred_interrupts():
    """Ctrl-C and SIGTERM while inside take effect between steps: yields `interrupted()`, true once
    one came, so that the loop stops with the state whole (the step in progress finishes first)."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False  # signals reach the main thread only
        return
    caught = []
    signals = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in signals}
    try:
        yield lambda: bool(caught)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def go(run, log, show):
    """The loop: each step reported and recorded; on an interruption or at the end, everything saved."""
    parameters = run.trainer.task.network.count_params()
    log(f"Training {run.run_dir.name}: {parameters:,} parameters, {run.options.precision}")
    with deferred_interrupts() as interrupted:
        try:
            for step in run.trainer.steps():
                record_step(run, step, show)
                if interrupted():
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            done = int(run.trainer.done)
            save(run, "interrupted")
            write_preview(run, done)
            raise Interrupted(
                f"interrupted after step {done}: saved the state, the model and the losses", run.run_dir
            )
        except SettingsMentionedError:
            write_provenance(run, "failed")  # the last saved state and model stay as they were
            raise
        save(run, "complete")
    log(f"Done: {run.model_path} after {int(run.trainer.done)} steps")
    return run.model_path


def record_step(run, step, show):
    """A step's row of losses.csv (written every `log_every`); the state saved every `save_every`, a
    preview every `preview_every`."""
    run.rows.append((step.iteration, *(step.losses[n] for n in run.trainer.task.cost_names), step.seconds))
    if show:
        show(step)
    if step.iteration % run.options.save_every == 0 and step.iteration < step.iterations:
        save(run, "running")  # the last step's state is saved by the caller
    elif step.iteration % run.options.log_every == 0:
        write_losses(run)  # rows past the saved state are dropped on resume
    if step.iteration % run.options.preview_every == 0 or step.iteration == step.iterations:
        write_preview(run, step.iteration)


def save(run, status):
    """Write the state, the model, losses.csv and provenance.json as of the steps done."""
    done = int(run.trainer.done)
    report.write_checkpoint(run.run_dir, run.trainer.checkpoint, done)
    made = stages(run)
    meta = {k: made[-1][k] for k in ("steps", "data_sha256", "run")} | {"stages": made}
    run.trainer.task.save(run.model_path, meta)
    write_losses(run)
    write_provenance(run, status)


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# --- losses.csv ---------------------------------------------------------------------------------


def write_losses(run):
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("iteration", *run.trainer.task.cost_names, "seconds"))
    writer.writerows((row[0], *(f"{v:.9g}" for v in row[1:])) for row in run.rows)
    files.write_text(run.run_dir / LOSSES_CSV, text.getvalue())


def read_losses(path):
    """The rows of a losses.csv: (iteration, losses..., seconds), numbers."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [(int(row[0]), *(float(v) for v in row[1:])) for row in rows if row]


# --- previews -----------------------------------------------------------------------------------


def preview_photos(options, n=PREVIEW_PHOTOS):
    """Up to n held-out photos (the training ones if none is held out), crop x crop, minus means."""
    try:
        paths = pipeline.manifest_files(options.data, split="heldout")
    except SettingError:
        paths = pipeline.manifest_files(options.data)
    crops = [images.resize_to(images.load_image(p), options.crop, options.crop) for p in paths[:n]]
    return np.stack(crops).astype(np.float32) - images.MEANS[0]


def grid(top, bottom):
    """Two rows of (n, H, W, 3) images minus means as one uint8 picture: top above bottom."""
    rows = [np.concatenate(list(np.clip(r + images.MEANS[0], 0, 255)), axis=1) for r in (top, bottom)]
    return np.concatenate(rows, axis=0).astype(np.uint8)


def write_preview(run, iteration):
    """previews/<iteration>.png: the held-out photos above their reconstructions."""
    picture = grid(run.previews, run.trainer.reconstruct(run.previews))
    folder = run.run_dir / PREVIEW_DIR
    folder.mkdir(exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "PNG")
    files.atomic_write(folder / f"{iteration}.png", lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))


# --- provenance.json ----------------------------------------------------------------------------


def read_provenance(run_dir):
    try:
        return json.loads((Path(run_dir) / PROVENANCE_JSON).read_text())
    except (OSError, ValueError):
        return {"sessions": []}


def cpu_name():
    return precision.cpu_info()[0] or platform.processor()


def machine():
    return {
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "device": single.device(),
    }


def write_provenance(run, status):
    """provenance.json: data, settings, steps, time, machine, final losses, versions."""
    trainer, options = run.trainer, run.options
    done, seconds = int(trainer.done), float(trainer.seconds)
    run.record["sessions"][-1].update(to_step=done, finished=now(), machine=machine())
    names = ("iteration", *trainer.task.cost_names, "seconds")
    run.record.update(
        status=status,
        method=options.method,
        run=run.run_dir.name,
        task=trainer.task.describe(),
        model={"path": str(run.model_path), "sha256": files.sha256_of(run.model_path)}
        if run.model_path.exists()
        else None,
        data={"manifest": str(options.data), "sha256": files.sha256_of(options.data)},
        settings=dataclasses.asdict(options),
        iterations_done=done,
        stages=stages(run),
        training_seconds=seconds,
        seconds_per_iteration=seconds / done if done else None,
        final_losses=dict(zip(names, run.rows[-1])) if run.rows else None,
        versions=single.versions(),
    )
    files.write_text(run.run_dir / PROVENANCE_JSON, json.dumps(run.record, indent=1) + "\n")
