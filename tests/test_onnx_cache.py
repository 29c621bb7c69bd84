"""The default backend's ONNX cache: exported once, reused, invalidated by other weights, rebuilt when corrupt
or stale, never used unverified; MindSpore when onnxruntime is missing or the export fails."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

import unet3plus._version
import unet3plus.runtime.exporting as export_module
from unet3plus import create_network, predict
from unet3plus.cli import main
from unet3plus.export import compare_onnx
from unet3plus.runtime import backends as engine
from unet3plus.runtime.onnx_cache import ExportMismatchError, cache_key, cached_onnx, entry_paths, network_sha256

pytest.importorskip("onnxruntime")

SHAPE = (2, 3, 32, 32)


@pytest.fixture(scope="module")
def net(golden_checkpoint):
    return create_network(checkpoint=golden_checkpoint)


@pytest.fixture
def exports(monkeypatch):
    """Counts the ONNX exports that really run."""
    calls = []
    real = export_module.export_network

    def counted(*args, **kwargs):
        calls.append(tuple(args[3]))
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, "export_network", counted)
    return calls


@pytest.fixture
def default_backend(monkeypatch, isolated_cache):
    monkeypatch.delenv(engine.BACKEND_VARIABLE, raising=False)  # conftest pins MindSpore for other tests


@pytest.fixture
def free_exports(monkeypatch):
    """An export that costs nothing always pays, so these tiny jobs export (the rule itself:
    tests/test_backend_choice.py)."""
    monkeypatch.setattr(engine, "EXPORT_SECONDS", (0.0, 0.0))


def predict_cli(tmp_path, name, checkpoint, *extra):
    return main(["predict", str(tmp_path / "v.npy"), "--out", str(tmp_path / name), "--checkpoint", str(checkpoint),
                 "--preset", "lits2017", "--batch-size", "2", "--probabilities", "--no-progress", *extra])


def test_cli_default_exports_once_reuses_and_a_different_checkpoint_exports_again(
        net, golden_checkpoint, tmp_path, capsys, exports, default_backend, free_exports):
    import mindspore as ms

    volume = np.random.default_rng(0).uniform(-200, 300, (3, 30, 28)).astype(np.float32)
    np.save(tmp_path / "v.npy", volume)
    assert predict_cli(tmp_path, "first", golden_checkpoint) == 0
    err = capsys.readouterr().err
    assert "backend: auto" in err and "exporting to ONNX pays" in err
    assert "exporting the network to ONNX for input 2 x 3 x 32 x 32" in err
    assert exports == [SHAPE]
    model, sidecar = entry_paths(cache_key(network_sha256(net), SHAPE))
    stamp = (model.stat().st_mtime_ns, model.stat().st_ino)
    assert json.loads(sidecar.read_text())["max_abs_difference"] <= 1e-4

    assert predict_cli(tmp_path, "second", golden_checkpoint) == 0
    err = capsys.readouterr().err
    assert "running ONNX Runtime on the cached ONNX export for input 2 x 3 x 32 x 32" in err and "exporting" not in err
    assert exports == [SHAPE] and (model.stat().st_mtime_ns, model.stat().st_ino) == stamp  # reused as it was
    with_mindspore = predict(net, volume, preset="lits2017", backend="mindspore", mode="pynative", probabilities=True)
    for run in ("first", "second"):
        np.testing.assert_allclose(np.load(tmp_path / run / "v_probabilities.npy"), with_mindspore.probabilities,
                                   atol=1e-4)

    other = create_network(checkpoint=golden_checkpoint)
    weight = next(iter(other.get_parameters()))
    weight.set_data(weight + 0.05)
    ms.save_checkpoint(other, str(tmp_path / "other.ckpt"))
    assert predict_cli(tmp_path, "third", tmp_path / "other.ckpt") == 0
    assert "exporting the network" in capsys.readouterr().err
    assert exports == [SHAPE, SHAPE] and len(list(model.parent.glob("*.onnx"))) == 2  # its own entry
    assert not np.allclose(np.load(tmp_path / "third" / "v_probabilities.npy"), with_mindspore.probabilities, atol=1e-4)

    assert predict_cli(tmp_path, "fourth", golden_checkpoint, "--backend", "mindspore") == 0  # the switch
    assert "backend:" not in capsys.readouterr().err and exports == [SHAPE, SHAPE]


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one bit: only the hash can tell
    path.write_bytes(bytes(data))


def stale_metadata(path):
    sidecar = path.with_suffix(".json")
    metadata = json.loads(sidecar.read_text())
    metadata["key"]["unet3plus"] = "0.0.1"
    sidecar.write_text(json.dumps(metadata))


def no_metadata(path):
    path.with_suffix(".json").unlink()


@pytest.fixture(scope="module")
def good_entry(net, tmp_path_factory):
    """One export's (model, sidecar), made once for the damage cases to copy."""
    model = cached_onnx(net, SHAPE, cache_dir=tmp_path_factory.mktemp("made"))
    return model, model.with_suffix(".json")


@pytest.mark.parametrize("damage, reason", [(truncate, "corrupt"), (flip_a_byte, "corrupt"),
                                            (stale_metadata, "stale"), (no_metadata, "missing")])
def test_a_damaged_entry_is_rebuilt_never_used(net, good_entry, isolated_cache, exports, caplog, damage, reason):
    model, sidecar = entry_paths(cache_key(network_sha256(net), SHAPE))
    model.parent.mkdir(parents=True)
    for made, copy in zip(good_entry, (model, sidecar)):
        shutil.copyfile(made, copy)
    assert cached_onnx(net, SHAPE) == model and exports == []  # sound as made: used
    damage(model)
    with caplog.at_level(logging.WARNING, logger="unet3plus.runtime.onnx_cache"):
        assert cached_onnx(net, SHAPE) == model
    assert exports == [SHAPE]
    assert reason in caplog.text and "exporting it again" in caplog.text
    assert cached_onnx(net, SHAPE) == model and len(exports) == 1  # sound again: reused
    assert compare_onnx(net, model)[0] <= 1e-4


def test_a_new_package_version_replaces_its_entries(net, isolated_cache, exports, monkeypatch):
    old = cached_onnx(net, SHAPE)
    monkeypatch.setattr(unet3plus._version, "__version__", "99.0")
    new = cached_onnx(net, SHAPE)
    assert new != old and exports == [SHAPE, SHAPE]
    assert not old.exists() and not old.with_suffix(".json").exists()  # superseded, removed


def test_an_export_that_disagrees_with_mindspore_is_not_cached_and_predict_falls_back(
        net, isolated_cache, monkeypatch, caplog, free_exports):
    monkeypatch.setattr(export_module, "compare_onnx", lambda *args, **kwargs: (0.5, None))
    with pytest.raises(ExportMismatchError, match="differs from MindSpore by up to 0.5"):
        cached_onnx(net, SHAPE)
    model, _ = entry_paths(cache_key(network_sha256(net), SHAPE))
    assert not model.parent.exists() or not any(p.suffix in (".onnx", ".json") for p in model.parent.iterdir())
    volume = np.random.default_rng(1).uniform(-200, 300, (3, 32, 32)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="unet3plus.runtime.backends"):
        fallen_back = predict(net, volume, preset="lits2017", backend="auto", batch_size=2, probabilities=True)
    assert "ONNX export failed" in caplog.text and "running MindSpore instead" in caplog.text
    expected = predict(net, volume, preset="lits2017", backend="mindspore", batch_size=2, probabilities=True)
    np.testing.assert_allclose(fallen_back.probabilities, expected.probabilities, atol=1e-5)


def test_smaller_batches_reuse_the_export_padded(net, isolated_cache, exports):
    backend = engine.create_backend(net, "auto")
    assert isinstance(backend, engine.CachedOnnxBackend)
    batch = np.random.default_rng(2).standard_normal(SHAPE).astype(np.float32)
    full = backend(batch)
    part = backend(batch[:1])
    assert exports == [SHAPE] and part.shape == (1, 1, 32, 32)
    np.testing.assert_allclose(part, full[:1], atol=1e-5)


def test_without_onnxruntime_auto_is_mindspore_and_says_so(net, monkeypatch, caplog):
    monkeypatch.setattr(engine, "onnxruntime_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="unet3plus.runtime.backends"):
        backend = engine.create_backend(net, "auto", mode="graph")
    assert isinstance(backend, engine.MindSporeBackend) and backend.mode == "graph"
    assert ("backend: mindspore (onnxruntime is not installed; pip install -e '.[onnx]' in the unet3plus checkout"
            in caplog.text)
