"""Shared fixtures: the reference facts in ../shared/reference, small inputs, fresh networks."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import unet3plus  # noqa: F401  (sets the oneDNN default before any MindSpore kernel runs)

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(os.environ.get("UNET3PLUS_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "reference"))
MANIFEST_TSV = REFERENCE_DIR / "unet3plus_lits2017_checkpoint_params.tsv"
GOLDEN_CKPT = REFERENCE_DIR / "golden_published_format.ckpt"
GOLDEN_IO = REFERENCE_DIR / "golden_io.npz"


def _require(path: Path) -> Path:
    """Skip where the reference folder is absent (a user's clone); CI sets UNET3PLUS_REQUIRE_REFERENCE=1."""
    if not path.exists():
        message = f"reference file {path} is absent (it lives in ../shared/reference beside the checkout)"
        if os.environ.get("UNET3PLUS_REQUIRE_REFERENCE") == "1":
            pytest.fail(message + ", and UNET3PLUS_REQUIRE_REFERENCE=1 says it must be there")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def manifest() -> list:
    """Rows (name, shape, dtype, role) of the published checkpoint manifest."""
    rows = []
    for line in _require(MANIFEST_TSV).read_text().splitlines():
        if line.startswith("#") or line.startswith("name\t") or not line.strip():
            continue
        name, shape, dtype, role = line.split("\t")
        dims = () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))
        rows.append((name, dims, dtype, role))
    return rows


@pytest.fixture(scope="session")
def golden_checkpoint() -> Path:
    return _require(GOLDEN_CKPT)


@pytest.fixture(scope="session")
def golden_io() -> dict:
    with np.load(_require(GOLDEN_IO)) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture
def graph_mode():
    """Run the test in GRAPH mode and restore PyNative afterwards."""
    import mindspore as ms

    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=previous)
