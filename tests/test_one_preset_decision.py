"""Every path prepares an input as the model was trained: predict on a network, on its folded backend, evaluate
(library), and the automatic choice by input kind, all through transforms.presets.resolve_preset."""
from __future__ import annotations

import numpy as np
import pytest

import unet3plus
from unet3plus.hub.model_config import InputConfig
from unet3plus.runtime import create_backend
from unet3plus.transforms.presets import resolve_preset

nibabel = pytest.importorskip("nibabel")


@pytest.fixture(scope="module")
def windowed_net():
    """A network whose config says it was trained on CT with the HU window [-100, 300] (not lits2017)."""
    net = unet3plus.create_network("unet3plus", in_channels=3, n_classes=1)
    net.model_config = net.model_config.replace(input=InputConfig(window=(-100.0, 300.0)))
    net.set_train(False)
    return net


def ct(path, seed=0):
    volume = np.random.default_rng(seed).uniform(-300, 400, (3, 32, 32)).astype(np.int16)
    nibabel.save(nibabel.Nifti1Image(np.transpose(volume, (2, 1, 0)), np.diag([-0.8, -0.8, 2.0, 1.0])), str(path))
    return path


def test_predict_on_the_network_and_its_folded_backend_use_the_trained_input(windowed_net, tmp_path):
    path = ct(tmp_path / "case.nii.gz")
    on_net = unet3plus.predict(windowed_net, path, mode="pynative", probabilities=True)
    folded = create_backend(windowed_net, "mindspore", optimize=True, mode="pynative")
    assert folded.model_config is windowed_net.model_config
    on_backend = unet3plus.predict(folded, path, probabilities=True)
    assert on_net.preset == on_backend.preset == "window[-100,300]"
    np.testing.assert_allclose(on_backend.probabilities, on_net.probabilities, atol=1e-4)
    lits = unet3plus.predict(windowed_net, path, preset="lits2017", mode="pynative", probabilities=True)
    assert not np.allclose(lits.probabilities, on_net.probabilities, atol=1e-4)


def test_library_evaluate_scores_the_trained_input_not_lits2017(windowed_net, tmp_path):
    path = ct(tmp_path / "case.nii.gz")
    trained = unet3plus.predict(windowed_net, path, mode="pynative", threshold=0.5)
    lits = unet3plus.predict(windowed_net, path, preset="lits2017", mode="pynative", threshold=0.5)
    labels = tmp_path / "case_labels.nii.gz"  # the trained-input mask as the reference: Dice 1 only on that input
    nibabel.save(nibabel.Nifti1Image(np.transpose(trained.mask, (2, 1, 0)), np.diag([-0.8, -0.8, 2.0, 1.0])),
                 str(labels))
    dice = {preset: unet3plus.evaluate(windowed_net, [("case", path, labels)], preset=preset).report.mean(
        "foreground", "dice") for preset in (None, "lits2017")}
    assert dice[None] == pytest.approx(1.0)
    assert not np.array_equal(lits.mask, trained.mask) and dice["lits2017"] < 1.0


def test_the_input_kind_picks_the_default_and_an_override_wins(windowed_net, caplog):
    config = windowed_net.model_config
    assert resolve_preset(config, "volume").name == "window[-100,300]"
    assert resolve_preset(None, "volume").name == "lits2017" and resolve_preset(None, "image").name == "image"
    with caplog.at_level("WARNING"):
        assert resolve_preset(config, "image").name == "image"
        assert resolve_preset(config, "volume", "standard").name == "standard"
    assert "trained on volume input" in caplog.text and "preset standard overrides" in caplog.text
