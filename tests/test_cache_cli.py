"""The content-addressed download cache, ``unet3plus cache`` and the ONNX cache's limit and verified bytes
(loopback servers and temporary folders only)."""
from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np
import pytest

from unet3plus.cli import main
from unet3plus.hub import PretrainedConfig, download_checkpoint, pretrained_checkpoint
from unet3plus.hub.cache import cache_entries
from unet3plus.hub.download import checkpoint_path, verified_path
from unet3plus.runtime import onnx_cache

pytestmark = pytest.mark.usefixtures("isolated_cache")

FIRST, SECOND = os.urandom(300_000), os.urandom(200_000)
FIRST_SHA, SECOND_SHA = hashlib.sha256(FIRST).hexdigest(), hashlib.sha256(SECOND).hexdigest()
NAME = "liver1.ckpt"


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"  # UNET3PLUS_HOME of isolated_cache


def fetch(server, path: str, data: bytes, **kwargs):
    url = server.serve(path, data) if path not in server.files else server.url(path)
    return download_checkpoint(url, hashlib.sha256(data).hexdigest(), progress=False, **kwargs)


def test_two_publishers_files_of_one_name_coexist_and_both_work_offline(server, cache, monkeypatch, caplog):
    first, second = fetch(server, "/a/" + NAME, FIRST), fetch(server, "/b/" + NAME, SECOND)
    assert first != second and first.read_bytes() == FIRST and second.read_bytes() == SECOND
    assert first == checkpoint_path(FIRST_SHA, NAME, cache) and first.name == FIRST_SHA + ".ckpt"
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    for _ in range(2):  # switching back and forth: nothing evicted, nothing fetched again
        assert fetch(server, "/a/" + NAME, FIRST).read_bytes() == FIRST
        assert fetch(server, "/b/" + NAME, SECOND).read_bytes() == SECOND
    assert len(server.requests_for("/a/" + NAME)) == len(server.requests_for("/b/" + NAME)) == 1
    assert "corrupt" not in caplog.text and not list(cache.rglob("*.corrupt"))
    assert sorted(entry.source for entry in cache_entries(cache)) == [server.url("/a/" + NAME),
                                                                       server.url("/b/" + NAME)]


def test_the_published_weights_work_offline_from_a_cache_of_the_old_layout(server, cache, monkeypatch):
    config = PretrainedConfig(name="test_model", url=server.url("/" + NAME), sha256=FIRST_SHA, filename=NAME,
                              size=len(FIRST), in_channels=3, n_classes=1, input_preset="lits2017",
                              license="Apache-2.0")
    old = cache / "checkpoints" / NAME
    old.parent.mkdir(parents=True)
    old.write_bytes(FIRST)
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    path = pretrained_checkpoint(config, progress=False)
    assert path == checkpoint_path(FIRST_SHA, NAME, cache) and path.read_bytes() == FIRST and path.sha256 == FIRST_SHA
    assert not old.exists()  # moved in after its hash matched
    (entry,) = cache_entries(cache)
    assert (entry.name, entry.source, entry.state(full=True)) == (NAME, "test_model", "ok (SHA-256)")


def test_an_old_layout_file_of_other_bytes_is_left_alone_and_not_used(server, cache, caplog):
    old = cache / "checkpoints" / NAME
    old.parent.mkdir(parents=True)
    old.write_bytes(SECOND)  # another publisher's liver1.ckpt
    assert fetch(server, "/a/" + NAME, FIRST).read_bytes() == FIRST
    assert old.read_bytes() == SECOND and "corrupt" not in caplog.text
    assert len(server.requests_for("/a/" + NAME)) == 1


def test_cache_list_shows_the_download_with_its_source_redacted(server, cache, capsys):
    url = server.serve("/w/" + NAME + "?sig=s3cr3t", FIRST).replace("http://", "http://alice:hunter2@")
    download_checkpoint(url, FIRST_SHA, progress=False)
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.strip().startswith(NAME)]
    assert "http://***@127.0.0.1" in line and "?<redacted>" in line and "0.3 MB" in line and "ok (size)" in line
    assert "1 download(s), 0.3 MB" in out
    stored = out + "".join(path.read_text() for path in (cache / "refs").iterdir())
    assert "hunter2" not in stored and "s3cr3t" not in stored


def test_clean_max_size_0_empties_the_cache_and_the_next_run_fills_it_again(server, cache, capsys):
    first = fetch(server, "/a/" + NAME, FIRST)
    fetch(server, "/b/" + NAME, SECOND)
    assert main(["cache", "clean", "--max-size", "0", "--dry-run"]) == 0
    assert "would remove 2 download(s), 0.5 MB; 0 kept" in capsys.readouterr().out and first.is_file()
    assert main(["cache", "clean", "--max-size", "0"]) == 0
    assert "removed 2 download(s), 0.5 MB; 0 kept, 0.0 MB" in capsys.readouterr().out
    assert cache_entries(cache) == [] and not first.exists()
    assert main(["cache", "list"]) == 0 and "0 download(s), 0.0 MB" in capsys.readouterr().out
    assert fetch(server, "/a/" + NAME, FIRST).read_bytes() == FIRST  # fetched again
    assert len(server.requests_for("/a/" + NAME)) == 2
    assert [entry.name for entry in cache_entries(cache)] == [NAME]


def test_clean_removes_the_least_recently_used_first(server, cache, capsys):
    old, new = fetch(server, "/a/" + NAME, FIRST), fetch(server, "/b/other.ckpt", SECOND)
    month_ago = time.time() - 30 * 86400
    for pointer in (cache / "refs").iterdir():
        if json.loads(pointer.read_text())["sha256"] == FIRST_SHA:
            os.utime(pointer, (month_ago, month_ago))
    assert main(["cache", "clean", "--older-than", "7"]) == 0
    assert not old.exists() and new.is_file()
    fetch(server, "/a/" + NAME, FIRST)  # now the most recently used
    assert main(["cache", "clean", "--max-size", "0.35"]) == 0  # both: 0.5 MB; dropping the older one fits
    assert old.is_file() and not new.exists()
    assert main(["cache", "clean"]) == 2 and "--older-than DAYS and/or --max-size MB" in capsys.readouterr().err


def test_verify_hashes_every_file_and_list_checks_sizes(server, cache, capsys):
    path = fetch(server, "/a/" + NAME, FIRST)
    assert main(["cache", "verify"]) == 0 and "ok (SHA-256)" in capsys.readouterr().out
    path.write_bytes(FIRST[:-1] + bytes([FIRST[-1] ^ 1]))  # same size, other bytes
    assert main(["cache", "list"]) == 0 and "ok (size)" in capsys.readouterr().out
    assert main(["cache", "verify"]) == 3
    assert "CORRUPT (SHA-256 differs)" in capsys.readouterr().out
    assert fetch(server, "/a/" + NAME, FIRST).read_bytes() == FIRST  # set aside and fetched again


# -- the ONNX cache: a size limit, least recently used out, and the bytes that were verified ------------------
def tiny_onnx(factor: float) -> bytes:
    """A 1x1x2x2 -> 1x1x2x2 model multiplying by ``factor``."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 2])],
        [numpy_helper.from_array(np.array(factor, np.float32), "k")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def fake_entry(network: str, data: bytes, last_used: float):
    key = onnx_cache.cache_key(network, (1, 1, 2, 2))
    model, sidecar = onnx_cache.entry_paths(key)
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(data)
    sidecar.write_text(json.dumps({"key": key, "sha256": hashlib.sha256(data).hexdigest()}))
    os.utime(sidecar, (last_used, last_used))
    return model


def test_the_onnx_cache_keeps_under_its_limit_removing_the_least_recently_used(monkeypatch, cache, capsys):
    now = time.time()
    oldest, used, newest = (fake_entry(str(n) * 64, bytes(400_000), now - 100 + n) for n in range(3))
    assert onnx_cache.existing_onnx("1" * 64, (1, 1, 2, 2)) == used  # a use renews its last use
    monkeypatch.setenv(onnx_cache.MAX_MB_VARIABLE, "0.9")
    assert [entry.path for entry in onnx_cache.evict_onnx(keep=newest)] == [oldest]
    monkeypatch.setenv(onnx_cache.MAX_MB_VARIABLE, "0")
    assert [entry.path for entry in onnx_cache.evict_onnx(keep=newest)] == [used]  # never the one just added
    assert newest.is_file()
    monkeypatch.setenv(onnx_cache.MAX_MB_VARIABLE, "lots")
    with pytest.raises(Exception, match="UNET3PLUS_ONNX_CACHE_MAX_MB='lots' is not a size in megabytes"):
        onnx_cache.onnx_cache_max_bytes()
    monkeypatch.delenv(onnx_cache.MAX_MB_VARIABLE)
    assert main(["cache", "clean", "--onnx", "--max-size", "0"]) == 0
    assert "removed 1 ONNX export(s)" in capsys.readouterr().out and not newest.exists()


def test_onnx_runtime_runs_the_verified_bytes_even_if_the_file_is_swapped(monkeypatch, cache):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    from unet3plus.errors import InputError
    from unet3plus.runtime import OnnxRuntimeBackend

    verified, other = tiny_onnx(2.0), tiny_onnx(-5.0)
    model = fake_entry("a" * 64, verified, time.time())
    path = onnx_cache.existing_onnx("a" * 64, (1, 1, 2, 2))
    assert path.sha256 == hashlib.sha256(verified).hexdigest()
    real_session = onnxruntime.InferenceSession

    def swap_then_load(source, *args, **kwargs):
        model.write_bytes(other)  # another process rewrites the file between the check and the load
        return real_session(source, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", swap_then_load)
    batch = np.ones((1, 1, 2, 2), np.float32)
    np.testing.assert_array_equal(OnnxRuntimeBackend(path)(batch), 2 * batch)  # the verified model's output
    with pytest.raises(InputError, match="changed after its SHA-256 was verified"):
        OnnxRuntimeBackend(verified_path(model, path.sha256))  # the file now holds other bytes
    monkeypatch.setattr(onnxruntime, "InferenceSession", real_session)
    np.testing.assert_array_equal(OnnxRuntimeBackend(model)(batch), -5 * batch)  # a plain path: as it is


def test_info_names_a_published_file_left_in_the_old_layout(cache, capsys):
    from unet3plus.hub import LITS2017

    old = cache / "checkpoints" / LITS2017.filename
    old.parent.mkdir(parents=True)
    old.write_bytes(b"stand-in")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert str(old) in out and "layout of an earlier version" in out
