"""``unet3plus demo`` on pydicom's CT slice: mask and overlay PNGs and a summary; offline without weights: clear error."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus.cli import main

pytest.importorskip("pydicom")


def test_demo_with_a_local_checkpoint(golden_checkpoint, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "demo"
    for _ in range(2):  # re-running replaces its own files
        assert main(["demo", "--checkpoint", str(golden_checkpoint), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    mask = np.array(Image.open(out / "ct_small_mask.png"))
    overlay = np.array(Image.open(out / "ct_small_overlay.png"))
    assert mask.shape == (128, 128) and set(np.unique(mask)) <= {0, 255}
    assert overlay.shape == (128, 128, 3)
    fraction = float(printed.split("foreground: ")[1].split("%")[0])
    assert fraction == pytest.approx(100 * np.count_nonzero(mask) / mask.size, abs=0.06)
    assert sorted(p.name for p in out.iterdir()) == ["ct_small_mask.png", "ct_small_overlay.png"]
    assert str(out / "ct_small_overlay.png") in printed


def test_demo_without_weights_offline_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNET3PLUS_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 3  # the download status
    assert "offline" in capsys.readouterr().err.lower()
    assert not (tmp_path / "demo").exists()
