"""One ``unet3plus predict`` worker, launched by ``msrun`` from test_predict_msrun.py (not collected by pytest).

Arguments: the output folder, a folder for this rank's record, then predict's inputs and options. The record
says which files this rank wrote (every writer goes through ``atomic_path``) and its exit status.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import unet3plus  # noqa: F401  (runtime defaults before MindSpore's first kernel)
from unet3plus import _atomic
from unet3plus.cli import main
from unet3plus.io import dicom, writers

out_dir, record_dir = Path(sys.argv[1]), Path(sys.argv[2])
written = []
atomic_path = _atomic.atomic_path


def recording_atomic_path(path, **kwargs):
    written.append(Path(path).name)
    return atomic_path(path, **kwargs)


for module in (writers, dicom, _atomic):
    module.atomic_path = recording_atomic_path

code = main(["predict", *sys.argv[3:], "--out", str(out_dir)])  # msrun's scheduler process ends inside this call
from mindspore.communication import get_rank  # noqa: E402  (a worker: the job's communication is up)

(record_dir / f"rank{get_rank()}.json").write_text(json.dumps({"code": code, "written": written}))
sys.exit(code)
