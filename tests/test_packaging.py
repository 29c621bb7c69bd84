"""The wheel and the sdist carry everything a user needs at run time."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT

pytest.importorskip("build", reason="the packaging test needs the 'build' package (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(REPO_ROOT)],
                   check=True, capture_output=True, text=True, timeout=600)
    return out


def test_wheel_and_sdist_contents(dist_dir):
    wheel = next(dist_dir.glob("unet3plus-*.whl"))
    sdist = next(dist_dir.glob("unet3plus-*.tar.gz"))
    wheel_names = set(zipfile.ZipFile(wheel).namelist())
    source_files = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "unet3plus").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts}
    assert source_files <= wheel_names, sorted(source_files - wheel_names)
    sdist_names = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    for required in ["pyproject.toml", "README.md", "LICENSE", "hub_conf.py", "mindspore_hub_conf.py", *sorted(source_files)]:
        assert required in sdist_names, required


def test_wheel_installs_into_fresh_environment_and_runs(dist_dir, tmp_path):
    wheel = next(dist_dir.glob("unet3plus-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # MindSpore/NumPy come from this environment through a .pth line (no download, and .pth lines do not
    # run this environment's editable-install hook); unet3plus itself comes only from the wheel.
    inner_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    Path(inner_site, "outer_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    probe = ("import unet3plus, numpy as np, mindspore as ms; "
             f"assert unet3plus.__file__.startswith({str(venv)!r}), unet3plus.__file__; "
             "net = unet3plus.UNet3Plus(); net.set_train(False); "
             "print(net(ms.Tensor(np.zeros((1, 3, 32, 32), np.float32))).shape)")
    result = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(1, 1, 32, 32)" in result.stdout
