"""The fp32 engine of ``predict``'s cropped strategies (issue 22): the faster installed engine on this machine,
timed once per export and then remembered, so that the same CT gives the same mask run after run."""
from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from unet3plus import predict
from unet3plus.runtime import engine_choice
from unet3plus.runtime.engine_choice import choose_engine, machine_key, remembered_engine
from unet3plus.runtime.onnx_cache import CHOICES_SUBDIR, onnx_entries

from test_whole_ct import network, synthetic_ct  # noqa: F401  (network: the seeded 3-class fixture)

X = np.ones((1, 2), np.float32)


def engine(seconds: float, value: float, calls: list, name: str):
    def make():
        calls.append(name)

        def run(x):
            time.sleep(seconds)
            return x * value
        return run
    return make


def test_the_faster_engine_is_chosen_remembered_and_kept_when_speeds_change(tmp_path, caplog):
    key = machine_key("ab" * 32, {"slow": "1", "quick": "1"})
    made: list = []
    with caplog.at_level(logging.INFO, logger="unet3plus.runtime.engine_choice"):
        name, run, output = choose_engine({"slow": engine(0.03, 1.0, made, "slow"),
                                           "quick": engine(0.0, 2.0, made, "quick")}, key, X, cache_dir=tmp_path)
    assert name == "quick" and np.array_equal(output, X * 2) and np.array_equal(run(X), X * 2)
    assert remembered_engine(key, tmp_path) == "quick"
    assert any("quick" in record.getMessage() and "remembered" in record.getMessage() for record in caplog.records)
    made.clear()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="unet3plus.runtime.engine_choice"):  # now "slow" would win a timing
        name, _, output = choose_engine({"slow": engine(0.0, 1.0, made, "slow"),
                                         "quick": engine(0.03, 2.0, made, "quick")}, key, X, cache_dir=tmp_path)
    assert name == "quick" and np.array_equal(output, X * 2)
    assert made == ["quick"] and not caplog.records  # nothing else made, nothing timed
    other_cpu = dict(key, isa="avx2")
    assert remembered_engine(other_cpu, tmp_path) is None  # another machine (or version) chooses for itself


def test_an_unreadable_record_is_timed_again_and_an_engine_that_cannot_run_is_left_out(tmp_path):
    key = machine_key("cd" * 32, {"a": "1", "b": "1"})
    choose_engine({"a": engine(0.0, 1.0, [], "a"), "b": engine(0.02, 1.0, [], "b")}, key, X, cache_dir=tmp_path)
    record, = (tmp_path / "onnx" / CHOICES_SUBDIR).glob("*.json")
    record.write_text("{not json")
    assert remembered_engine(key, tmp_path) is None
    name, _, _ = choose_engine({"a": engine(0.02, 1.0, [], "a"), "b": engine(0.0, 1.0, [], "b")}, key, X,
                               cache_dir=tmp_path)
    assert name == "b" and json.loads(record.read_text())["engine"] == "b"
    made: list = []
    name, _, _ = choose_engine({"a": engine(0.0, 1.0, made, "a"), "broken": lambda: None},
                               machine_key("ef" * 32, {"a": "1"}), X, cache_dir=tmp_path)
    assert name == "a" and made == ["a"]


def test_default_predict_uses_one_remembered_engine_and_gives_the_same_mask_again(network, isolated_cache,
                                                                                  tmp_path, caplog):
    pytest.importorskip("openvino")  # in the test extra: installed wherever the suite is
    volume = synthetic_ct(n_slices=10)
    with caplog.at_level(logging.INFO, logger="unet3plus.runtime.engine_choice"):
        first = predict(network, volume, strategy="default", backend="auto")
    timed = [record.getMessage() for record in caplog.records if "fp32 engine for" in record.getMessage()]
    assert len(timed) == 1 and "ONNX Runtime" in timed[0] and "OpenVINO" in timed[0], timed
    records = list((tmp_path / "cache" / "onnx" / CHOICES_SUBDIR).glob("*.json"))
    assert len(records) == 1
    chosen = json.loads(records[0].read_text())["engine"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="unet3plus.runtime.engine_choice"):  # a new cropped network: as in
        again = predict(network, volume, strategy="default", backend="auto")       # a new process
    assert not [record for record in caplog.records if "fp32 engine for" in record.getMessage()]
    np.testing.assert_array_equal(first.mask, again.mask)
    entry, = [entry for entry in onnx_entries() if entry.sha256 == records[0].name.split("-")[0]]
    assert chosen in ("ONNX Runtime", "OpenVINO")
    entry.remove()  # an export removed from the cache takes its engine choices with it
    assert not records[0].exists()


def test_the_record_names_the_cpu_and_engine_versions():
    key = machine_key("00" * 32, {"onnxruntime": "1.0"})
    assert key["cpu"] and key["isa"] and key["cpus"] >= 1 and key["engines"] == {"onnxruntime": "1.0"}
    assert engine_choice.ROUNDS >= 2  # one warm-up call that is not counted


def test_the_cli_shows_the_engine_choice(golden_checkpoint, tmp_path, capsys):
    from unet3plus.cli import main

    np.save(tmp_path / "v.npy", np.zeros((3, 32, 32), np.float32))
    assert main(["predict", str(tmp_path / "v.npy"), "--checkpoint", str(golden_checkpoint), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 0
    capsys.readouterr()
    logging.getLogger("unet3plus.runtime.engine_choice").info("fp32 engine for 32 x 32 crops on this CPU: a test")
    assert "fp32 engine for 32 x 32 crops on this CPU: a test" in capsys.readouterr().err
