"""examples/quickstart.ipynb runs top to bottom (nbclient) with the golden checkpoint as its weights."""
from __future__ import annotations

import pytest

from conftest import REPO_ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("pydicom")

NOTEBOOK = REPO_ROOT / "examples" / "quickstart.ipynb"


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in notebook.cells if cell.cell_type == "code")


def test_quickstart_notebook_executes(golden_checkpoint, monkeypatch, tmp_path):
    monkeypatch.setenv("UNET3PLUS_CHECKPOINT", str(golden_checkpoint))
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")  # the published weights must not be needed
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "weights from " + str(golden_checkpoint) in texts
    assert "CT (1, 128, 128)" in texts and "foreground:" in texts
    images = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    assert len(images) == 1
