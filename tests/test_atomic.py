from pathlib import Path

import pytest

from unet3plus._atomic import atomic_path


def test_success_renames_into_place_keeping_extension(tmp_path):
    final = tmp_path / "out" / "mask.nii.gz"
    with atomic_path(final) as temp:
        assert temp.name.endswith(".partial.nii.gz") and temp.parent == final.parent
        temp.write_bytes(b"data")
    assert final.read_bytes() == b"data"
    assert [p.name for p in final.parent.iterdir()] == ["mask.nii.gz"]


def test_failure_leaves_neither_final_nor_temporary_file(tmp_path):
    final = tmp_path / "best.ckpt"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as temp:
            temp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_previous_file(tmp_path):
    final = tmp_path / "last.ckpt"
    final.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with atomic_path(final) as temp:
            temp.write_bytes(b"new but incomplete")
            raise RuntimeError
    assert final.read_bytes() == b"previous"


def test_no_overwrite_refuses_existing(tmp_path):
    final = tmp_path / "x.png"
    final.write_bytes(b"1")
    with pytest.raises(FileExistsError, match="already exists"):
        with atomic_path(final, overwrite=False):
            pass
    assert Path(final).read_bytes() == b"1"


def test_result_gets_ordinary_permissions_even_from_read_only_writers(tmp_path):
    import os
    import stat

    final = tmp_path / "exported.onnx"
    with atomic_path(final) as temp:
        temp.write_bytes(b"model")
        temp.chmod(stat.S_IRUSR)  # what mindspore.save_checkpoint / export leave behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(final.stat().st_mode) == 0o666 & ~umask
