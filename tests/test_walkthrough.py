"""The walkthrough notebook: built from its script, rendered, and runnable headless at a tiny size."""

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip(
    "nbformat", reason="nbformat is not installed (pip install nbformat nbclient ipykernel)"
)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
TINY = {"SIZE": (64, 48), "ITERATIONS": 4}
CELL_TIMEOUT = 180  # seconds; a cell at the tiny size takes a few


def builder():
    """notebooks/build_walkthrough.py as a module (notebooks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_walkthrough", NOTEBOOKS / "build_walkthrough.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed():
    return nbformat.read(NOTEBOOKS / "walkthrough.ipynb", as_version=4)


def errors(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


def all_text(nb):
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_the_committed_notebook_is_the_scripts_cells():
    built = builder().make_notebook()
    nb = committed()
    assert [(c.cell_type, c.source) for c in nb.cells] == [(c.cell_type, c.source) for c in built.cells], (
        "notebooks/walkthrough.ipynb is stale: run `python notebooks/build_walkthrough.py`"
    )


def test_the_committed_notebook_is_rendered_with_its_figures():
    nb = committed()
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code"), "not executed"
    assert not errors(nb)
    assert builder().figures(nb) >= 10
    assert (NOTEBOOKS / "walkthrough.ipynb").stat().st_size < 3_000_000


def test_the_walkthrough_runs_headless_at_a_tiny_size(default_weights):
    pytest.importorskip("nbclient", reason="nbclient is not installed (pip install nbclient ipykernel)")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install ipykernel)")
    build = builder()
    nb = committed()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    build.inject_parameters(nb, **TINY)
    build.execute(nb, timeout=CELL_TIMEOUT)  # raises CellExecutionError naming the failing cell
    assert not errors(nb)
    assert "input     (1, 48, 64, 3)" in all_text(nb), "the tiny SIZE was not used"
    assert "4 steps in" in all_text(nb), "the tiny ITERATIONS was not used"
    assert build.figures(nb) == build.figures(committed())
