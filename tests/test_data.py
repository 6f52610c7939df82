"""The training data: extraction from a tiny fake .deb and wheel, licences, deduplication, the size
filter, the split, the manifest, the command's one-line errors, and the `tf.data` pipeline."""

import bz2
import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from nst_tf.data import assemble as asm
from nst_tf.data import sources as src
from nst_tf.errors import NstError, SettingError

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "fake-backgrounds"
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Fake Team
License: GPL-2+

Files: nature/lake.jpg
Copyright: 2021, A. Photographer
License: CC-BY-4.0

Files: abstract/*
Copyright: 2019 B. Painter
License:
 Public Domain

Files: debian/*
Copyright: 2022 Packager
License: Expat
"""


def picture(seed, width=1200, height=800):
    """A smooth random RGB picture (a coarse random grid, upsampled): no two seeds alike."""
    grid = np.random.default_rng(seed).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    return Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)


def encoded(image, fmt="JPEG"):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def write_deb(path, files, copyright_text=COPYRIGHT, package=PACKAGE):
    """A minimal .deb: an ar archive of debian-binary, control.tar.gz and data.tar.gz."""

    def tar_of(entries):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in entries.items():
                info = tarfile.TarInfo(f"./{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    data = tar_of({f"usr/share/doc/{package}/copyright": copyright_text.encode(), **files})
    members = [("debian-binary", b"2.0\n"), ("control.tar.gz", tar_of({"control": b"Package: x\n"})),
               ("data.tar.gz", data)]  # fmt: skip
    with open(path, "wb") as f:
        f.write(b"!<arch>\n")
        for name, payload in members:
            f.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(payload):<10}`\n".encode())
            f.write(payload + (b"\n" if len(payload) % 2 else b""))
    return Path(path)


def write_wheel(path, files):
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return Path(path)


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


BASE = "usr/share/backgrounds/fake"
LAKE = picture(1)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A fake .deb and wheel with their `Source`s, a user's folder and a folder of evaluation images."""
    root = tmp_path_factory.mktemp("fake")
    deb_files = {
        f"{BASE}/nature/lake.jpg": encoded(LAKE),
        f"{BASE}/nature/lake_small.png": encoded(LAKE.resize((900, 600), Image.Resampling.LANCZOS), "PNG"),
        f"{BASE}/nature/lake_copy.jpg": encoded(LAKE),
        f"{BASE}/nature/tiny.jpg": encoded(picture(2, 600, 400)),
        f"{BASE}/nature/forest.jpg": encoded(picture(3, 800, 1000)),
        f"{BASE}/nature/eval_copy.jpg": encoded(picture(9)),
        f"{BASE}/abstract/swirl.png": encoded(picture(4, 1024, 1024), "PNG"),
        f"{BASE}/abstract/white.png": encoded(Image.new("RGB", (800, 600), "white"), "PNG"),
        f"{BASE}/abstract/readme.txt": b"not an image",
    }
    deb = write_deb(root / "fake.deb", deb_files)
    rules = (src.Rule(f"{BASE}/nature/*", "photo"), src.Rule(f"{BASE}/abstract/*", "style"))
    deb_source = src.Source("fake-backgrounds", "debian", PACKAGE, "1:1.0-1", sha(deb), rules)
    grid = np.asarray(picture(5, 900, 600))
    wheel = write_wheel(root / "fake.whl", {
        "fakepkg/data/face.dat": bz2.compress(grid.tobytes()),
        "fakepkg/data/grey.npz": _npz(data=np.asarray(picture(6, 640, 560).convert("L"))),
        "fakepkg/data/other.png": encoded(picture(7), "PNG"),
    })  # fmt: skip
    wheel_rules = (src.Rule("fakepkg/data/face.dat", "photo", "public domain", "Someone", "bz2:600x900x3"),
                   src.Rule("fakepkg/data/grey.npz", "photo", "CC0", decode="npz:data"))  # fmt: skip
    wheel_source = src.Source("fakepkg", "pypi", "fakepkg", "2.0", sha(wheel), wheel_rules, "BSD-3-Clause")
    folder = root / "mine"
    (folder / "styles").mkdir(parents=True)
    picture(8, 700, 700).save(folder / "holiday.jpg")
    picture(10, 700, 700).save(folder / "tubingen.jpg")  # a name of jcjohnson's examples: never kept
    picture(11, 768, 768).save(folder / "styles" / "mine.png")
    evaluation = root / "eval"
    evaluation.mkdir()
    picture(9).save(evaluation / "golden.jpg", quality=80)  # the deb's eval_copy.jpg, re-encoded
    archives = {deb_source.name: deb, wheel_source.name: wheel}
    return SimpleNamespace(root=root, sources=(deb_source, wheel_source), archives=archives, folder=folder,
                           evaluation=evaluation)  # fmt: skip


def _npz(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_copyright_file_gives_each_installed_file_its_licence():
    paragraphs = src.copyright_paragraphs(COPYRIGHT)
    assert src.licence_of(f"{BASE}/nature/lake.jpg", paragraphs) == ("CC-BY-4.0", "2021, A. Photographer")
    assert src.licence_of(f"{BASE}/abstract/swirl.png", paragraphs) == ("Public Domain", "2019 B. Painter")
    assert src.licence_of(f"{BASE}/nature/forest.jpg", paragraphs) == (
        "GPL-2+",
        "2020 Fake Team",
    )  # not debian/*
    assert src.copyright_paragraphs("This package was debianized by someone.\n") == []


def test_extract_a_deb_keeps_the_wanted_images_with_their_licences(fake, tmp_path):
    deb_source = fake.sources[0]
    members = src.extract(deb_source, fake.archives[deb_source.name], tmp_path)
    by_name = {Path(m.path).name: m for m in members}
    assert set(by_name) == {"lake.jpg", "lake_small.png", "lake_copy.jpg", "tiny.jpg", "forest.jpg",
                            "eval_copy.jpg", "swirl.png", "white.png"}  # fmt: skip
    assert (by_name["lake.jpg"].kind, by_name["lake.jpg"].licence) == ("photo", "CC-BY-4.0")
    assert (by_name["swirl.png"].kind, by_name["swirl.png"].licence) == ("style", "Public Domain")
    assert by_name["lake.jpg"].file == by_name["lake_copy.jpg"].file  # stored once
    assert Image.open(by_name["forest.jpg"].file).size == (800, 1000)
    again = src.extract(deb_source, fake.archives[deb_source.name], tmp_path)  # from the cache's index
    assert again == members


def test_extract_a_wheel_decodes_its_arrays(fake, tmp_path):
    wheel_source = fake.sources[1]
    members = {Path(m.path).name: m for m in src.extract(wheel_source, fake.archives["fakepkg"], tmp_path)}
    assert set(members) == {"face.dat", "grey.npz"}  # other.png matches no rule
    face = np.asarray(Image.open(members["face.dat"].file))
    np.testing.assert_array_equal(face, np.asarray(picture(5, 900, 600)))
    assert Image.open(members["grey.npz"].file).size == (640, 560)
    assert (members["face.dat"].licence, members["face.dat"].author) == ("public domain", "Someone")
    assert members["grey.npz"].licence == "CC0"


def test_fetch_uses_the_cached_archive_and_refuses_a_changed_one(fake, tmp_path):
    deb_source = fake.sources[0]
    cached = tmp_path / "archives" / src.archive_name(deb_source)
    cached.parent.mkdir()
    cached.write_bytes(fake.archives[deb_source.name].read_bytes())
    assert src.archive_name(deb_source) == "fake-backgrounds_1%3a1.0-1.deb"
    assert src.fetch(deb_source, tmp_path, download=pytest.fail) == cached  # no download

    def changed(source, folder):
        (folder / "x.deb").write_bytes(b"!<arch>\nsomething else")

    with pytest.raises(NstError, match="not the pinned"):
        src.fetch(dataclasses.replace(deb_source, version="2.0"), tmp_path, download=changed)


def test_select_names_sources_or_says_which_is_unknown():
    assert src.select(["all"]) == src.SOURCES
    assert src.select(["none"]) == ()
    assert [s.name for s in src.select(["scipy", "mate-backgrounds"])] == ["mate-backgrounds", "scipy"]
    with pytest.raises(SettingError, match="no source 'bogus'"):
        src.select(["bogus"])


def assemble(fake, out, **settings):
    return asm.assemble(out, fake.sources, fake.folder, asm.Settings(**settings), fake.root / "cache",
                        fetcher=lambda source, cache: fake.archives[source.name],
                        excluded_dirs=(fake.evaluation,))  # fmt: skip


def test_assemble_dedupes_filters_and_records_every_file(fake, tmp_path):
    manifest = assemble(fake, tmp_path / "out", heldout=0.25)
    files = {Path(r["path"]).name: r for r in manifest["files"]}
    # lake.jpg once (its copy: same bytes; lake_small.png: the same picture, smaller); tiny.jpg too
    # small; white.png blank; eval_copy.jpg and tubingen.jpg evaluation images; other.png no rule
    assert set(files) == {
        "lake.jpg",
        "forest.jpg",
        "face.dat",
        "grey.npz",
        "holiday.jpg",
        "swirl.png",
        "mine.png",
    }
    dropped = {s["source"]: s["dropped"] for s in manifest["sources"]}
    assert dropped["fake-backgrounds"] == {"small": 1, "blank": 1, "duplicate": 1, "near-duplicate": 1,
                                           "excluded": 1, "unreadable": 0}  # fmt: skip
    assert dropped["folder"]["excluded"] == 1
    lake = files["lake.jpg"]
    assert (lake["kind"], lake["licence"], lake["copyright"]) == (
        "photo",
        "CC-BY-4.0",
        "2021, A. Photographer",
    )
    assert (lake["package"], lake["version"], lake["path"]) == (PACKAGE, "1:1.0-1", f"{BASE}/nature/lake.jpg")
    assert (lake["original_size"], lake["size"]) == ([1200, 800], [1024, 683])
    assert files["holiday.jpg"]["licence"] == "user's" and files["mine.png"]["kind"] == "style"
    assert files["forest.jpg"]["size"] == [800, 1000]  # never enlarged
    for record in manifest["files"]:
        written = tmp_path / "out" / record["file"]
        assert record["file"].startswith({"photo": "photos/", "style": "styles/"}[record["kind"]])
        assert sha(written) == record["sha256"] and list(Image.open(written).size) == record["size"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == manifest
    tally = {kind: {split: sum(r["kind"] == kind and r["split"] == split for r in manifest["files"])
                    for split in ("train", "heldout")} for kind in ("photo", "style")}  # fmt: skip
    assert manifest["counts"] == tally and tally["style"] == {"train": 1, "heldout": 1}  # two: one of each


def test_assemble_again_gives_the_same_manifest_and_split(fake, tmp_path):
    first = assemble(fake, tmp_path / "a", heldout=0.25)
    again = assemble(fake, tmp_path / "b", heldout=0.25)
    assert first["files"] == again["files"] and first["counts"] == again["counts"]


def test_split_holds_out_a_seeded_share_of_each_kind_and_adding_pictures_moves_none():
    items = [SimpleNamespace(member=SimpleNamespace(kind=kind, source="s", family=""), sha256=f"{kind}{i}")
             for kind in ("photo", "style") for i in range(400)]  # fmt: skip
    splits = asm.split(items, seed=0, heldout=0.1)
    held = {kind: {p.sha256 for p in items if p.member.kind == kind and splits[id(p)] == "heldout"}
            for kind in ("photo", "style")}  # fmt: skip
    assert all(25 <= len(held[k]) <= 55 for k in held), held  # about 40 of each 400
    assert asm.split(items, seed=0, heldout=0.1) == splits
    fewer = items[:150] + items[400:550]  # the same pictures without the others: none changes its split
    assert asm.split(fewer, seed=0, heldout=0.1) == {id(p): splits[id(p)] for p in fewer}
    other = asm.split(items, seed=1, heldout=0.1)
    assert {p.sha256 for p in items if other[id(p)] == "heldout"} != held["photo"] | held["style"]
    assert set(asm.split(items[:1], seed=0, heldout=0.1).values()) == {"train"}  # one picture: trained on
    assert sorted(asm.split(items[:2], seed=0, heldout=1e-9).values()) == ["heldout", "train"]  # one held
    # a wallpaper's light and dark versions: one held out, the other too
    light, dark = next((p, items[i + 1]) for i, p in enumerate(items[:399]) if splits[id(p)] == "heldout"
                       and splits[id(items[i + 1])] == "train")  # fmt: skip
    light.member = dark.member = SimpleNamespace(kind=light.member.kind, source="s", family="Kay")
    again = asm.split(items, seed=0, heldout=0.1)
    assert again[id(light)] == again[id(dark)] == "heldout"
    assert sum(v == "heldout" for v in again.values()) == sum(v == "heldout" for v in splits.values()) + 1


def test_assemble_settings_fail_before_anything_is_fetched(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(SettingError, match="^out="):
        asm.assemble(blocker / "out", fetcher=pytest.fail)
    with pytest.raises(SettingError, match="^folder="):
        asm.assemble(tmp_path / "out", folder=tmp_path / "missing", fetcher=pytest.fail)


def run_command(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "nst_tf.data.assemble", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    "args, flag",
    [(["--folder={tmp}/missing", "--sources=none"], "--folder="), (["--out={tmp}/file.txt/out"], "--out="),
     (["--sources=bogus"], "--sources="), ([], "--out")],
)  # fmt: skip
def test_command_bad_input_is_one_line_and_status_2(tmp_path, args, flag):
    (tmp_path / "file.txt").write_text("x")
    args = [a.format(tmp=tmp_path) for a in args]
    if not any(a.startswith("--out") for a in args) and flag != "--out":
        args.append(f"--out={tmp_path}/out")
    done = run_command(*args, f"--cache_dir={tmp_path}/cache")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {flag}"), done.stderr
    assert not (tmp_path / "cache").exists()  # nothing fetched


def write_manifest(folder, sizes):
    records = []
    for i, (width, height) in enumerate(sizes):
        name = f"photos/p{i}.jpg"
        (folder / "photos").mkdir(exist_ok=True)
        picture(20 + i, width, height).save(folder / name)
        records.append({"file": name, "kind": "photo", "split": "train"})
    records.append({"file": "photos/p0.jpg", "kind": "photo", "split": "heldout"})
    (folder / "manifest.json").write_text(json.dumps({"files": records}))
    return folder / "manifest.json"


def test_pipeline_gives_seeded_random_crops_in_0_255(tmp_path):
    from nst_tf.data import pipeline

    manifest = write_manifest(tmp_path, [(60, 40), (50, 70), (64, 64)])
    take = lambda seed, **kw: np.stack([b.numpy() for b in pipeline.batches(  # noqa: E731
        manifest, batch_size=2, crop=16, short_side=(16, 24), seed=seed, **kw).take(3)])  # fmt: skip
    first = take(1)
    assert first.shape == (3, 2, 16, 16, 3) and first.dtype == np.float32
    assert first.min() >= 0 and first.max() <= 255 and first.std() > 1
    np.testing.assert_array_equal(take(1), first)
    assert not np.array_equal(take(2), first)
    assert take(1, epochs=1).shape == (1, 2, 16, 16, 3)  # 3 files, batches of 2: one
    assert pipeline.manifest_files(manifest, split="heldout") == [str(tmp_path / "photos/p0.jpg")]
    with pytest.raises(SettingError, match="lists no style"):
        pipeline.batches(manifest, kind="style")
    with pytest.raises(SettingError, match="short_side"):
        pipeline.batches(manifest, crop=32, short_side=(16, 24))


def test_pipeline_hue_rotates_the_same_crops_by_seeded_amounts(tmp_path):
    from nst_tf.data import pipeline

    manifest = write_manifest(tmp_path, [(60, 40), (50, 70), (64, 64)])
    take = lambda hue: np.stack([b.numpy() for b in pipeline.batches(  # noqa: E731
        manifest, batch_size=2, crop=16, short_side=(16, 24), seed=3, hue=hue).take(2)])  # fmt: skip
    plain, turned = take(0.0), take(0.4)
    np.testing.assert_array_equal(take(0.4), turned)  # seeded
    assert np.abs(turned - plain).mean() > 1  # the colours move ...
    # ... on the same crops: a hue rotation keeps each pixel's value (its largest channel)
    np.testing.assert_allclose(turned.max(-1), plain.max(-1), atol=0.5)
    assert turned.min() >= 0 and turned.max() <= 255.5
    with pytest.raises(SettingError, match="hue"):
        pipeline.batches(manifest, hue=0.7)


def test_assemble_again_removes_only_its_own_files_no_longer_listed(fake, tmp_path):
    out = tmp_path / "out"
    first = assemble(fake, out)
    (out / "photos" / "yours.jpg").write_bytes(b"kept: not in any manifest")
    fetcher = lambda source, cache: fake.archives[source.name]  # noqa: E731
    again = asm.assemble(out, fake.sources[:1], None, cache_dir=fake.root / "cache", fetcher=fetcher,
                         excluded_dirs=(fake.evaluation,))  # fmt: skip
    listed = {r["file"] for r in again["files"]}
    assert listed < {r["file"] for r in first["files"]}
    assert {p.relative_to(out).as_posix() for p in out.glob("*/*.jpg")} == listed | {"photos/yours.jpg"}
