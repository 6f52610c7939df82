import io
import pickle
import zipfile

import numpy as np
import pytest
from torch_format import legacy_bytes, main_pickle, malicious_pickle, zip_bytes

from nst_tf.errors import UnsafeWeightsError, WeightsError
from nst_tf.nets import torchfile


def sample():
    rng = np.random.default_rng(0)
    return {
        "q": rng.integers(0, 256, (4, 3, 3, 3), dtype=np.uint8),
        "table": rng.normal(size=256).astype(np.float32),
        "b": rng.normal(size=4).astype(np.float32),
        "scalar": np.array(3.5, np.float64),
    }


@pytest.mark.parametrize("writer", [legacy_bytes, zip_bytes])
def test_round_trip(writer):
    tensors = sample()
    loaded = torchfile.load(writer(tensors))
    assert set(loaded) == set(tensors)
    for name, a in tensors.items():
        assert loaded[name].dtype == a.dtype
        np.testing.assert_array_equal(loaded[name], a)


def test_non_contiguous_strides():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    body, keys = main_pickle({"t": a.T.copy()})
    loaded = torchfile.load(legacy_bytes({"t": np.asfortranarray(a)}))
    np.testing.assert_array_equal(loaded["t"], a)
    assert body and keys


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = malicious_pickle(f"touch {marker}")
    with pytest.raises(UnsafeWeightsError, match="os.system"):
        torchfile.load(evil, "evil.bin")
    # the same pickle hidden inside a zip archive, and after a valid legacy header
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("archive/data.pkl", evil)
    with pytest.raises(UnsafeWeightsError):
        torchfile.load(archive.getvalue(), "evil.pt")
    header = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    with pytest.raises(UnsafeWeightsError):
        torchfile.load(header + pickle.dumps({"little_endian": True}, protocol=2) + evil, "evil.bin")
    assert not marker.exists()


@pytest.mark.parametrize("cut", [10, 200, -100, -1])
def test_truncated_file_is_a_clear_error(cut):
    data = legacy_bytes(sample())
    with pytest.raises(WeightsError, match="weights.bin"):
        torchfile.load(data[:cut], "weights.bin")


def test_garbage_is_a_clear_error():
    with pytest.raises(WeightsError):
        torchfile.load(b"\x80\x02not a pickle at all", "x.bin")
    with pytest.raises(WeightsError):
        torchfile.load(b"PK\x03\x04 broken zip", "x.pt")
