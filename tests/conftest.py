"""Shared fixtures: the golden reference (carried in tests/data, see golden.py), small inputs, modes.

The golden fixtures have no skip path: the data travels with the repository, so a missing file is an error
and a golden test can never quietly stop running (in CI or in a fresh clone).
"""
from __future__ import annotations

from pathlib import Path

import pytest

import unet3plus  # noqa: F401  (sets the oneDNN default before any MindSpore kernel runs)
from golden import read_golden_io, read_manifest, seeded_network_weights, write_published_format_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def manifest() -> list:
    """Rows (name, shape, dtype, role) of the published checkpoint manifest."""
    return read_manifest()


@pytest.fixture(scope="session")
def seeded_weights(manifest) -> dict:
    """{name: float32 array} of the 171 network parameters behind the golden logits (names without prefix)."""
    return seeded_network_weights(manifest)


@pytest.fixture(scope="session")
def golden_checkpoint(manifest, tmp_path_factory) -> Path:
    """The golden weights in the published training-step format (`network.` prefix, Adam state), built once."""
    return write_published_format_checkpoint(manifest, tmp_path_factory.mktemp("golden") / "golden_published.ckpt")


@pytest.fixture(scope="session")
def golden_io() -> dict:
    """`input` (1x3x64x96) and the reference `logits` (1x1x64x96) of the seeded golden."""
    return read_golden_io()


@pytest.fixture
def graph_mode():
    """Run the test in GRAPH mode and restore PyNative afterwards."""
    import mindspore as ms

    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=previous)
