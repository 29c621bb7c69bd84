"""The automatic backend exports to ONNX only when the job repays it (``runtime.backends.export_pays``), uses an
existing cached export whatever the job, and gives MindSpore's masks when it does not export."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from test_onnx_cache import exports, net  # noqa: F401  (fixtures: the ONNX exports that really run; the network)
from unet3plus import predict
from unet3plus.runtime import backends as engine
from unet3plus.runtime.onnx_cache import cached_onnx

pytest.importorskip("onnxruntime")


def volume(slices: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(slices).uniform(-200, 300, (slices, size, size)).astype(np.float32)


@pytest.mark.parametrize("n_batches, shape, pays", [
    (1, (1, 3, 128, 128), False), (1, (1, 3, 512, 512), False),  # one DICOM slice: never worth an export
    (3, (1, 3, 512, 512), False), (100, (1, 3, 512, 512), True),  # a 100-slice CT at 512 x 512 repays it
    (10, (4, 3, 128, 128), False), (200, (4, 3, 128, 128), True)])
def test_the_rule_weighs_the_export_against_the_batches_it_saves_time_on(n_batches, shape, pays):
    decision, why = engine.export_pays(n_batches, shape)
    assert decision is pays
    assert f"{n_batches} batch(es) of {' x '.join(map(str, shape))}" in why and "MindSpore" in why


def test_the_break_even_grows_as_the_batches_shrink():
    def break_even(shape):
        return next(n for n in range(1, 10_000) if engine.export_pays(n, shape)[0])

    assert break_even((1, 3, 512, 512)) < break_even((4, 3, 128, 128)) < break_even((1, 3, 128, 128))
    assert not engine.export_pays(break_even((1, 3, 512, 512)) - 1, (1, 3, 512, 512))[0]


def test_a_one_slice_job_runs_mindspore_without_exporting_and_gives_its_mask(net, exports, isolated_cache, caplog):
    x = volume(3)
    with caplog.at_level(logging.INFO, logger="unet3plus.runtime.backends"):
        automatic = predict(net, x, preset="lits2017", backend="auto", batch_size=4, probabilities=True)
    assert exports == []
    assert "running MindSpore, not exporting to ONNX: 1 batch(es) of 3 x 3 x 32 x 32" in caplog.text
    expected = predict(net, x, preset="lits2017", backend="mindspore", batch_size=4, probabilities=True)
    np.testing.assert_allclose(automatic.probabilities, expected.probabilities, atol=1e-5)
    np.testing.assert_array_equal(automatic.mask, expected.mask)


def test_a_many_batch_job_exports(net, exports, isolated_cache, caplog):
    backend = engine.create_backend(net, "auto")
    backend.prepare(10_000)  # far past the break-even of 2 x 3 x 32 x 32 batches
    batch = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="unet3plus.runtime.backends"):
        logits = backend(batch)
    assert exports == [(2, 3, 32, 32)] and "exporting to ONNX pays: 10000 batch(es)" in caplog.text
    np.testing.assert_allclose(logits, engine.MindSporeBackend(net, mode="pynative")(batch), atol=1e-4)


def test_an_existing_export_is_used_even_for_one_batch(net, exports, isolated_cache, caplog):
    cached_onnx(net, (1, 3, 32, 32))
    assert exports == [(1, 3, 32, 32)]
    with caplog.at_level(logging.INFO, logger="unet3plus.runtime.backends"):
        automatic = predict(net, volume(1), preset="lits2017", backend="auto", allow_thin=True, probabilities=True)
    assert exports == [(1, 3, 32, 32)]  # no new export
    assert "running ONNX Runtime on the cached ONNX export for input 1 x 3 x 32 x 32" in caplog.text
    expected = predict(net, volume(1), preset="lits2017", backend="mindspore", allow_thin=True, probabilities=True)
    np.testing.assert_allclose(automatic.probabilities, expected.probabilities, atol=1e-4)


def test_small_jobs_on_one_backend_count_together_until_exporting_pays(net, exports, isolated_cache, monkeypatch):
    """The CLI serves every input with one backend: the batches MindSpore already ran at a shape count, so a
    folder of single slices exports once their total repays it."""
    asked = []

    def pays_from_three(n_batches, shape, mode="auto"):
        asked.append(n_batches)
        return n_batches >= 3, "test"

    monkeypatch.setattr(engine, "export_pays", pays_from_three)
    backend = engine.create_backend(net, "auto")
    batch = np.zeros((1, 3, 32, 32), np.float32)
    for _ in range(3):
        backend.prepare(1)
        backend(batch)
        backend(batch)  # the same job: decided once
    assert asked == [1, 3] and exports == [(1, 3, 32, 32)]
