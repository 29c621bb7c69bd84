"""Shared fixtures: the golden reference (carried in tests/data, see golden.py), small inputs, modes.

The golden fixtures have no skip path: the data travels with the repository, so a missing file is an error
and a golden test can never quietly stop running (in CI or in a fresh clone).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import unet3plus  # noqa: F401  (sets the oneDNN default before any MindSpore kernel runs)
from loopback_server import LoopbackServer
from golden import read_golden_io, read_manifest, seeded_network_weights, write_published_format_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[1]
# The CLI's default backend exports to ONNX once per network and shape; tests of MindSpore's results keep
# MindSpore, and tests/test_onnx_cache.py clears this to test the default itself.
os.environ["UNET3PLUS_BACKEND"] = "mindspore"


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
def stock_gradients(monkeypatch):
    """Networks built in the test train with MindSpore's stock gradient kernels (see stock_gradients.py)."""
    from stock_gradients import DEFAULTS

    monkeypatch.setitem(DEFAULTS, "lean_backward", False)


@pytest.fixture
def graph_mode():
    """Run the test in GRAPH mode and restore PyNative afterwards."""
    import mindspore as ms

    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=previous)


DOWNLOAD_VARIABLES = ("UNET3PLUS_HOME", "UNET3PLUS_OFFLINE", "UNET3PLUS_CHECKPOINT_URL", "UNET3PLUS_DOWNLOAD_RETRIES",
                      "UNET3PLUS_DOWNLOAD_BACKOFF", "UNET3PLUS_DOWNLOAD_TIMEOUT", "UNET3PLUS_DOWNLOAD_DEADLINE")


@pytest.fixture
def clean_download_environment(monkeypatch):
    """None of the user's download settings reach the test."""
    for variable in DOWNLOAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch, clean_download_environment):
    """A cache of the test's own and fast retries; nothing reaches the real cache or network."""
    monkeypatch.setenv("UNET3PLUS_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("UNET3PLUS_DOWNLOAD_BACKOFF", "0.01")
    monkeypatch.setenv("UNET3PLUS_DOWNLOAD_RETRIES", "2")


@pytest.fixture
def server():
    """A loopback HTTP server (tests/loopback_server.py) for the test's own files."""
    with LoopbackServer() as running:
        yield running
