"""The public surface: what the top level offers is documented, and sub-package lists hold no internals."""
from __future__ import annotations

import re

import pytest

import unet3plus
from conftest import REPO_ROOT


def docs_api_table() -> str:
    """The entry-point table of docs/models.md (moved there from the README, issue 24)."""
    text = (REPO_ROOT / "docs" / "models.md").read_text()
    start = text.index("| Entry point | What it is |")
    return text[start:text.index("\n\n", start)]


def test_every_top_level_name_is_in_the_docs_api_table():
    documented = set(re.findall(r"`unet3plus\.(\w+)", docs_api_table()))
    assert set(unet3plus.__all__) <= documented, sorted(set(unet3plus.__all__) - documented)
    assert all(hasattr(unet3plus, name) for name in unet3plus.__all__)


@pytest.mark.parametrize("package, internal", [
    ("training", "configure_memory_pool"), ("training", "release_free_heap"), ("losses", "normalised_weights"),
    ("hub", "PUBLISHED_PARAMETER_NAMES"),
])
def test_sub_packages_do_not_export_internals(package, internal):
    module = __import__(f"unet3plus.{package}", fromlist=["__all__"])
    assert internal not in module.__all__


def test_pretrained_checkpoint_takes_a_model_name(tmp_path, monkeypatch):
    monkeypatch.setenv("UNET3PLUS_HOME", str(tmp_path))
    monkeypatch.delenv("UNET3PLUS_CHECKPOINT_URL", raising=False)
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")  # nothing is downloaded: the error names the published file
    with pytest.raises(unet3plus.hub.OfflineError, match=unet3plus.hub.LITS2017.filename.replace(".", r"\.")):
        unet3plus.pretrained_checkpoint("unet3plus_lits2017")
    with pytest.raises(ValueError, match="unknown model name"):
        unet3plus.pretrained_checkpoint("no_such_model")
