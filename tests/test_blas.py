"""nst_tf.blas: numpy's OpenBLAS on one thread inside `one_thread`, as before after it."""

import numpy as np
import pytest

from nst_tf import blas


def threads():
    return [get() for _, get in blas.openblas()]


@pytest.fixture
def openblas():
    if not blas.openblas():
        pytest.skip("numpy's BLAS here is not an OpenBLAS found in /proc/self/maps")
    return blas.openblas()


def test_finds_numpys_openblas_on_linux_wheels():
    try:
        name = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except (TypeError, KeyError):  # a numpy before 1.26 or a build that does not say
        name = None
    if name != "scipy-openblas":
        pytest.skip("numpy is not the PyPI wheel (its BLAS is not scipy-openblas)")
    assert blas.openblas(), "the wheel's scipy-openblas should be found"


def test_one_thread_inside_and_restored_after(openblas):
    set_threads, get_threads = openblas[0]
    first = get_threads()
    set_threads(2)
    before = threads()
    with blas.one_thread():
        assert threads() == [1] * len(openblas)
        with blas.one_thread():  # nested: still one, and the outer block's restore is the first state
            assert threads() == [1] * len(openblas)
        assert threads() == [1] * len(openblas)
    assert threads() == before
    set_threads(first)


def test_restored_when_the_block_raises(openblas):
    before = threads()
    with pytest.raises(ValueError), blas.one_thread():
        raise ValueError("inside")
    assert threads() == before


def test_eigh_inside_gives_the_same_result():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 64))
    cov = a.T @ a
    with blas.one_thread():
        values, vectors = np.linalg.eigh(cov)
    np.testing.assert_allclose(vectors * values @ vectors.T, cov, rtol=1e-9, atol=1e-9)


def test_blocks_in_two_threads_restore_after_the_last(openblas):
    import threading

    before = threads()
    entered, release = threading.Event(), threading.Event()

    def other():
        with blas.one_thread():
            entered.set()
            release.wait(10)

    worker = threading.Thread(target=other)
    worker.start()
    assert entered.wait(10)
    with blas.one_thread():  # does not wait for the other thread's block
        assert threads() == [1] * len(openblas)
    assert threads() == [1] * len(openblas)  # the other block is still open
    release.set()
    worker.join(10)
    assert threads() == before


def test_finds_scipys_openblas_once_scipy_is_loaded(openblas):
    import scipy.linalg  # noqa: F401  (loads scipy's own OpenBLAS, if its wheel has one)

    with open("/proc/self/maps") as maps:
        paths = {line.split(None, 5)[5].strip() for line in maps if "openblas" in line.rsplit("/", 1)[-1]}
    assert len(blas.openblas()) == len(paths)
