"""Nothing lost, nothing trusted: interruption and resume, non-finite losses, atomic writes, bombs, fuzz."""

import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

import h5py
import numpy as np
import pytest
from conftest import tiny_layers, write_matconvnet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch_format import legacy_bytes

from nst_tf import images, report, torchfile, weights
from nst_tf.errors import NstError, WeightsError
from nst_tf.optimize import Config, Stylizer

CONTENT = np.random.default_rng(0).integers(0, 256, (36, 48, 3), dtype=np.uint8)
STYLE = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_gives_the_uninterrupted_result(tiny, tmp_path, ema):
    config = Config(width=48, height=36, iterations=7, save_every=3, ema=ema)
    straight = list(Stylizer(CONTENT, STYLE, tiny, config).steps())[-1]
    first = Stylizer(CONTENT, STYLE, tiny, config)
    steps = first.steps()
    for _ in range(4):
        next(steps)
    steps.close()  # as an interruption would
    report.write_checkpoint(tmp_path, first.checkpoint, 4)
    second = Stylizer(CONTENT, STYLE, tiny, config)
    prefix, done, _ = report.latest_checkpoint(tmp_path)
    second.restore(prefix)
    rest = list(second.steps())
    assert done == 4 and [p.iteration for p in rest] == [4, 5, 6]
    np.testing.assert_array_equal(rest[-1].image, straight.image)
    assert rest[-1].costs == straight.costs


def test_a_non_finite_loss_stops_with_the_last_good_image(tiny):
    config = Config(width=48, height=36, iterations=5, save_every=1, learning_rate=1e38)
    progress = list(Stylizer(CONTENT, STYLE, tiny, config).steps())
    assert progress[-1].failure and "NaN" in progress[-1].failure
    assert np.isfinite(progress[-1].image).all()


def cli(*args, home, cwd):
    env = {**os.environ, "NST_TF_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "nst_tf.run", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    write_matconvnet(home / "imagenet-vgg-verydeep-19.mat", tiny_layers())
    return home


ARGS = [
    "--content",
    "chelsea.jpg",
    "--style",
    "swirls.jpg",
    "--width",
    "48",
    "--height",
    "36",
    "--save_every",
    "50",
]


@pytest.fixture(scope="module")
def straight(home, tmp_path_factory):
    """The final image of an uninterrupted run."""
    cwd = tmp_path_factory.mktemp("straight")
    run = cli(*ARGS, "--iterations", "600", "--output_dir", "out", home=home, cwd=cwd)
    assert run.wait(timeout=600) == 0, run.stderr.read()
    return (cwd / "out" / "generated_image.jpg").read_bytes()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_then_resume_equals_an_uninterrupted_run(tmp_path, home, straight, sig):
    run = cli(*ARGS, "--iterations", "600", "--output_dir", "cut", home=home, cwd=tmp_path)
    deadline = time.time() + 300
    while not (tmp_path / "cut" / "50.png").exists() and time.time() < deadline:
        time.sleep(0.02)
    run.send_signal(sig)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert '"status": "interrupted"' in (tmp_path / "cut" / "run.json").read_text()
    assert not (tmp_path / "cut" / "generated_image.jpg").exists()
    resumed = cli("--resume", "cut", home=home, cwd=tmp_path)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert "Resuming after iteration" in out
    assert (tmp_path / "cut" / "generated_image.jpg").read_bytes() == straight
    assert '"status": "complete"' in (tmp_path / "cut" / "run.json").read_text()


def test_nan_loss_on_the_command_line(tmp_path, home):
    run = cli(
        *ARGS, "--iterations", "5", "--learning_rate", "1e38", "--output_dir", "o", home=home, cwd=tmp_path
    )
    _, err = run.communicate(timeout=300)
    assert run.returncode == 2 and err.count("\n") == 1, err
    assert "--learning_rate" in err and "last good image" in err
    Image.open(tmp_path / "o" / "generated_image.jpg").load()
    assert '"status": "failed"' in (tmp_path / "o" / "run.json").read_text()


WRITER = """
import sys, numpy as np
from nst_tf import images
a = np.zeros((1, 256, 256, 3), np.float32) - 100
b = np.zeros((1, 256, 256, 3), np.float32) + 100
print("ready", flush=True)
while True:
    images.save_image(sys.argv[1], a)
    images.save_image(sys.argv[1], b)
"""


def test_a_kill_during_saves_leaves_the_old_or_the_new_file(tmp_path):
    target = tmp_path / "image.png"
    seen = set()
    for k in range(8):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        writer.stdout.readline()
        time.sleep(0.05 + 0.037 * k)
        writer.kill()
        writer.wait()
        pixels = np.asarray(Image.open(target))  # a half-written PNG would fail to decode
        old, new = (images.deprocess(np.full((1, 256, 256, 3), v, np.float32)) for v in (-100, 100))
        assert np.array_equal(pixels, old) or np.array_equal(pixels, new)
        seen.add(int(pixels[0, 0, 0]))
    assert seen <= {23, 223}


def png_header_only(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_header_only(30000, 30000))
    with pytest.raises(NstError, match="too large to open safely"):
        images.load_image(tmp_path / "bomb.png")
    (tmp_path / "big.png").write_bytes(png_header_only(10000, 10000))  # 100 Mpx: PIL only warns
    with pytest.raises(NstError, match="too large to open safely"):
        images.load_image(tmp_path / "big.png")


def test_a_full_disk_is_found_before_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(report.shutil, "disk_usage", lambda p: type("U", (), {"free": 10 * 2**20})())
    with pytest.raises(NstError, match="MB free"):
        report.prepare_output_dir(tmp_path, needed_bytes=50 * 2**20)


def test_weights_checksum_of_the_pinned_wheel_is_checked():
    assert len(weights.DEFAULT_WHEEL_SHA256) == 64 and len(weights.DEFAULT_MEMBER_SHA256) == 64


# --- fuzz: random and mutated inputs never crash with anything but the project's own clear error ---

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def valid_png():
    buf = io.BytesIO()
    Image.fromarray(CONTENT).save(buf, "PNG")
    return buf.getvalue()


def valid_jpeg():
    buf = io.BytesIO()
    Image.fromarray(CONTENT).save(buf, "JPEG")
    return buf.getvalue()


def mutate(data, edits):
    data = bytearray(data)
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data)


EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8)


@FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_image_loader_random_bytes(tmp_path, data):
    path = tmp_path / "fuzz.jpg"
    path.write_bytes(data)
    try:
        images.load_image(path)
    except NstError:
        pass


@FUZZ
@given(st.sampled_from(["png", "jpeg"]), EDITS, st.integers(1, 3000))
def test_fuzz_image_loader_mutated(tmp_path, kind, edits, cut):
    data = mutate(valid_png() if kind == "png" else valid_jpeg(), edits)[: cut * 4]
    path = tmp_path / f"fuzz.{kind}"
    path.write_bytes(data)
    try:
        out = images.load_image(path)
        assert out.dtype == np.uint8 and out.shape[2] == 3
    except NstError:
        pass


LEGACY = legacy_bytes({"block1_conv1_W_q": np.arange(24, dtype=np.uint8).reshape(2, 3, 2, 2),
                       "block1_conv1_W_table": np.linspace(-1, 1, 256, dtype=np.float32)})  # fmt: skip


@FUZZ
@given(EDITS, st.integers(1, len(LEGACY)))
def test_fuzz_torch_reader(edits, cut):
    try:
        torchfile.load(mutate(LEGACY, edits)[:cut], "fuzz.bin")
    except WeightsError:
        pass


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    layers = tiny_layers(widths={1: 2, 2: 2, 3: 2, 4: 2, 5: 2})
    write_matconvnet(folder / "w.mat", layers)
    weights.write_npz(layers, folder / "w.npz")
    with h5py.File(folder / "w.h5", "w") as f:
        for name, (kernel, bias) in layers.items():
            group = f.create_group(weights._keras_name(name))
            group.create_dataset("kernel", data=kernel)
            group.create_dataset("bias", data=bias)
    return {p.suffix: p.read_bytes() for p in folder.iterdir()}


@FUZZ
@given(st.sampled_from([".mat", ".npz", ".h5"]), EDITS, st.integers(1, 10**6))
def test_fuzz_weight_readers(tmp_path, weight_files, suffix, edits, cut):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(mutate(weight_files[suffix], edits)[:cut])
    try:
        weights.read_weights(path)
    except WeightsError:
        pass
