"""The supported MindSpore range is enforced at import, with one line naming it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from unet3plus._compat import UnsupportedMindSporeError, check_mindspore_version, installed_mindspore_version

pytestmark = pytest.mark.compat


@pytest.mark.parametrize("version", ["2.7.0", "2.7.2", "2.8.0", "2.9.1", "2.10.0", "2.10.0rc1"])
def test_supported_releases_pass(version):
    check_mindspore_version(version)


@pytest.mark.parametrize("version", ["2.6.0", "2.5.0", "1.10.1", "2.11.0", "3.0.0"])
def test_other_releases_fail_with_one_line_naming_the_range(version):
    with pytest.raises(UnsupportedMindSporeError) as raised:
        check_mindspore_version(version)
    message = str(raised.value)
    assert "\n" not in message and version in message and "mindspore>=2.7,<2.11" in message


def test_the_installed_release_is_supported():
    check_mindspore_version(installed_mindspore_version())


def test_import_fails_on_an_unsupported_release(tmp_path):
    """A fake 'mindspore' 2.6.0 distribution first on the path: importing the package refuses it."""
    dist = tmp_path / "mindspore-2.6.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mindspore\nVersion: 2.6.0\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), repo]))
    result = subprocess.run([sys.executable, "-c", "import unet3plus"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "UnsupportedMindSporeError" in last_line and "2.6.0" in last_line and "<2.11" in last_line
