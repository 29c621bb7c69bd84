import subprocess
import sys


def test_cli_help_runs_as_module():
    result = subprocess.run([sys.executable, "-m", "unet3plus", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: unet3plus" in result.stdout
