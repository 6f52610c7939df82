"""Nothing lost, nothing trusted: interruption and resume, non-finite losses, atomic writes, bombs, fuzz."""

import hashlib
import io
import os
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib

import conftest
import numpy as np
import pytest
from conftest import (
    FUZZ_LAYERS,
    MAT_CRASHERS,
    REPO,
    examples,
    mutate,
    write_h5,
    write_matconvnet,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch_format import legacy_bytes

from nst_tf import images
from nst_tf.app import report
from nst_tf.errors import NstError, WeightsError
from nst_tf.methods.gatys.optimize import Config, Stylizer
from nst_tf.nets import torchfile, untrusted, weights

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


def default_sigint():
    """In the child: Ctrl-C's default action, which a suite started in the background (`... &` from
    a script) would otherwise pass on as ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args, home, cwd):
    env = {**os.environ, "NST_TF_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "nst_tf.run", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=default_sigint)  # fmt: skip


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

FUZZ = settings(max_examples=examples(300))


def valid_png():
    buf = io.BytesIO()
    Image.fromarray(CONTENT).save(buf, "PNG")
    return buf.getvalue()


def valid_jpeg():
    buf = io.BytesIO()
    Image.fromarray(CONTENT).save(buf, "JPEG")
    return buf.getvalue()


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
    write_matconvnet(folder / "w.mat", FUZZ_LAYERS)
    weights.write_npz(FUZZ_LAYERS, folder / "w.npz")
    write_h5(folder / "w.h5", FUZZ_LAYERS)
    return {p.suffix: p.read_bytes() for p in folder.iterdir()}


# Where fuzzing saves the inputs that crashed a C reader (contained in its child process), to be
# added to the regression cases below.
CRASHES = REPO / ".hypothesis" / "crashes"


@settings(max_examples=examples(60))  # each .mat/.h5 example starts a reader process (~0.6 s)
@given(st.sampled_from([".mat", ".npz", ".h5"]), EDITS, st.integers(1, 10**6))
def test_fuzz_weight_readers(tmp_path, weight_files, suffix, edits, cut):
    path = tmp_path / f"fuzz{suffix}"
    data = mutate(weight_files[suffix], edits)[:cut]
    path.write_bytes(data)
    try:
        weights.read_weights(path, cache_dir=tmp_path / "cache")
    except WeightsError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
        if "crashed" in str(e):
            CRASHES.mkdir(parents=True, exist_ok=True)
            saved = CRASHES / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
            saved.write_bytes(data)
            warnings.warn(f"contained a reader crash ({e}); input saved as {saved}", stacklevel=1)


# --- crashing inputs found by fuzzing, kept as the few bytes that make them from the fuzz files ---


def crashes_plain_loadmat(path):
    code = "import sys, scipy.io; scipy.io.loadmat(sys.argv[1])"
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True).returncode < 0


@pytest.mark.parametrize("edits", MAT_CRASHERS)
def test_a_mat_that_segfaults_loadmat_is_a_weights_error(tmp_path, weight_files, edits):
    path = tmp_path / "crash.mat"
    path.write_bytes(mutate(weight_files[".mat"], edits))
    segfaults = crashes_plain_loadmat(path)
    for _ in range(3):  # every time, not by luck of the heap
        with pytest.raises(WeightsError) as caught:
            weights.read_weights(path, cache_dir=tmp_path / "cache")
        assert str(caught.value).startswith(str(path))
        if segfaults:  # scipy may fix it one day; the error must stay clear either way
            assert "crashed the MATLAB reader" in str(caught.value) and "SIGSEGV" in str(caught.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize(
    "name, data",
    [
        ("crash.mat", lambda files: mutate(files[".mat"], MAT_CRASHERS[0])),
        ("damaged.h5", lambda files: files[".h5"][:1500]),
        ("scrambled.h5", lambda files: mutate(files[".h5"], [(p, 0xFF) for p in range(600, 2600, 7)])),
    ],
)
def test_a_damaged_weights_file_on_the_command_line(tmp_path, weight_files, name, data):
    (tmp_path / name).write_bytes(data(weight_files))
    args = ["--weights", name, "--content", "chelsea.jpg", "--style", "swirls.jpg", "--output_dir", "o"]
    for _ in range(2):
        done = conftest.cli(*args, "--iterations", "2", cwd=tmp_path, home=tmp_path / "home")
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith(f"{name}: ") or f" {name}: " in done.stderr, done.stderr
        assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


# --- the child process's limits and results, whatever the reader does ---


@pytest.fixture
def mat_file(tmp_path):
    return write_matconvnet(tmp_path / "w.mat", FUZZ_LAYERS)


def child_that_runs(monkeypatch, code):
    monkeypatch.setattr(untrusted, "child_command", lambda kind, s, t: [sys.executable, "-c", code, str(t)])


@pytest.mark.parametrize(
    "code, message",
    [
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", r"MATLAB reader \(signal SIGSEGV\)"),
        ("import os; os.abort()", r"crashed the MATLAB reader \(signal SIGABRT\)"),
        ("raise SystemExit(1)", r"crashed the MATLAB reader \(exit status 1\)"),
        ("import sys; open(sys.argv[1], 'wb').write(b'PK not an npz')", "malformed result"),
        ("import sys, numpy; numpy.savez(sys.argv[1], conv1_1_W=[0.0], conv1_1_b=[0.0])", "not VGG-19"),
    ],
)
def test_what_the_child_does_wrong_is_one_clear_line(monkeypatch, tmp_path, mat_file, code, message):
    child_that_runs(monkeypatch, code)
    with pytest.raises(WeightsError, match=message) as caught:
        weights.read_weights(mat_file, cache_dir=tmp_path / "cache")
    assert str(caught.value).startswith(str(mat_file)) and "\n" not in str(caught.value)


def test_a_child_past_its_time_limit_is_stopped(monkeypatch, tmp_path, mat_file):
    child_that_runs(monkeypatch, "import time; time.sleep(60)")
    monkeypatch.setattr(untrusted, "limits", lambda size: (0.5, 2**31))
    started = time.perf_counter()
    with pytest.raises(WeightsError, match="took longer than"):
        weights.read_weights(mat_file, cache_dir=tmp_path / "cache")
    assert time.perf_counter() - started < 10


def test_the_child_runs_under_a_memory_limit(monkeypatch, tmp_path, mat_file):
    monkeypatch.setattr(untrusted, "limits", lambda size: (60, 64 * 2**20))  # too little for scipy
    with pytest.raises(WeightsError, match="MATLAB reader"):
        weights.read_weights(mat_file, cache_dir=tmp_path / "cache")


def test_a_converted_file_is_cached_and_the_cache_checked(monkeypatch, tmp_path, mat_file):
    first = weights.read_weights(mat_file, cache_dir=tmp_path / "cache")
    (cached,) = (tmp_path / "cache").glob("*.npz")
    assert cached.name == f"matconvnet-{first.sha256}.npz"
    child_that_runs(monkeypatch, "raise SystemExit(1)")  # a second conversion would now fail
    again = weights.read_weights(mat_file, cache_dir=tmp_path / "cache")
    assert again.source == "matconvnet" and again.sha256 == first.sha256
    np.testing.assert_array_equal(again.layers["conv5_4"][0], first.layers["conv5_4"][0])
    cached.write_bytes(cached.read_bytes()[:-10])  # damaged: no longer its checksum, so converted again
    with pytest.raises(WeightsError, match="exit status 1"):
        weights.read_weights(mat_file, cache_dir=tmp_path / "cache")
