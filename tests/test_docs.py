"""The documentation: every fenced ``bash`` and ``python`` example in README.md and docs/**/*.md runs offline, and
the MkDocs site builds in strict mode.

Examples: one test per page (so a failure names the page), its blocks run in order, each in its own process
(bash: ``bash -euo pipefail``; python: this virtual environment's python), in one fresh temporary folder per
page that starts with the files `docs_fixture_folder` writes (published.ckpt, ct.nii.gz, ct_dicom/, slice.png,
lits/). Environment: UNET3PLUS_OFFLINE=1, UNET3PLUS_HOME=<an empty folder>, this environment's bin first on
PATH, proxies pointing at a closed local port (no network). A block whose fence line is directly preceded by
``<!-- docs-test: skip: REASON -->`` is not run; the skipped blocks must be exactly the ones docs/testing.md lists.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import pytest

from conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
TESTING_PAGE = DOCS / "testing.md"
RUN_LANGUAGES = ("bash", "python")
SKIP_MARKER = re.compile(r"^<!--\s*docs-test:\s*skip:\s*(?P<reason>.+?)\s*-->$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
BLOCK_TIMEOUT_S = 600


@dataclass(frozen=True)
class Block:
    page: str          # path relative to the repository root, e.g. docs/predict.md
    line: int          # line number of the opening fence (1-based)
    language: str
    code: str
    skip_reason: Optional[str]

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.code.splitlines() if line.strip()), "")


def doc_pages() -> List[Path]:
    return [REPO_ROOT / "README.md"] + sorted(DOCS.rglob("*.md"))


def page_name(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def extract_blocks(path: Path) -> List[Block]:
    """Every fenced block tagged bash or python, with the skip marker directly above its fence, if any."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, fence, language = match["indent"], match["fence"], match["info"].lower()
        start, body = index, []
        index += 1
        while index < len(lines) and not re.match(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[index]):
            body.append(lines[index][len(indent):] if lines[index].startswith(indent) else lines[index].lstrip())
            index += 1
        index += 1  # the closing fence
        if language not in RUN_LANGUAGES:
            continue
        previous = lines[start - 1].strip() if start > 0 else ""
        marker = SKIP_MARKER.match(previous)
        blocks.append(Block(page_name(path), start + 1, language, "\n".join(body) + "\n",
                            marker["reason"] if marker else None))
    return blocks


def documented_skips() -> List[Tuple[str, str, str]]:
    """(page, first line, reason) rows of the table between the docs-test-skips markers in docs/testing.md."""
    text = TESTING_PAGE.read_text(encoding="utf-8")
    table = text.split("<!-- docs-test-skips:begin -->", 1)[1].split("<!-- docs-test-skips:end -->", 1)[0]
    rows = []
    for line in table.strip().splitlines():
        cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) != 3 or set(cells[0]) <= set("-: ") or cells[0].lower() == "page":
            continue
        rows.append(tuple(cell[1:-1] if cell.startswith("`") and cell.endswith("`") else cell for cell in cells))
    return rows


PAGES_WITH_EXAMPLES = [path for path in doc_pages() if extract_blocks(path)]


def test_every_documentation_page_is_collected():
    assert (REPO_ROOT / "README.md") in PAGES_WITH_EXAMPLES
    assert len(PAGES_WITH_EXAMPLES) >= 5, [page_name(path) for path in PAGES_WITH_EXAMPLES]


def test_skipped_examples_are_the_documented_ones():
    skipped = [(block.page, block.first_line, block.skip_reason)
               for path in doc_pages() for block in extract_blocks(path) if block.skip_reason]
    table = "\n".join(f"| `{page}` | `{first_line.replace('|', chr(92) + '|')}` | {reason} |"
                      for page, first_line, reason in skipped)
    assert skipped == documented_skips(), (
        "the examples marked <!-- docs-test: skip: ... --> must be the table in docs/testing.md, in order "
        f"(page, first line, reason); today's rows:\n{table}")


def test_readme_starts_with_the_two_set_up_commands_and_ci_runs_the_test_one_verbatim():
    first = extract_blocks(REPO_ROOT / "README.md")[0]
    commands = [line for line in first.code.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2 and "unet3plus demo" in commands[0], commands
    assert commands[1] == 'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/python -m pytest -q'
    assert commands[1] in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


# ---------------------------------------------------------------------------------------------------- inputs

@pytest.fixture(scope="session")
def docs_fixture_folder(tmp_path_factory) -> Path:
    """The files every page's folder starts with, built once: a published-format checkpoint with seeded weights,
    a small int16 CT in HU as NIfTI and as a DICOM series, a PNG slice, and a LiTS-layout folder of two cases."""
    nibabel = pytest.importorskip("nibabel")
    pytest.importorskip("pydicom")
    from PIL import Image

    from dicom_data import write_series
    from golden import read_manifest, write_published_format_checkpoint
    from unet3plus.data.synthetic import synthetic_liver_volume
    from volume_data import write_nifti

    folder = tmp_path_factory.mktemp("docs_inputs")
    write_published_format_checkpoint(read_manifest(), folder / "published.ckpt")
    hu, _ = synthetic_liver_volume((8, 96, 96), seed=0)
    hu = np.rint(hu).astype(np.int16)
    write_nifti(folder / "ct.nii.gz", hu)
    write_series(folder / "ct_dicom", hu)
    window = (np.clip(hu[len(hu) // 2].astype(np.float32), -200, 200) + 200) / 400 * 255
    Image.fromarray(np.rint(window).astype(np.uint8)).save(folder / "slice.png")
    for index in range(2):
        case_hu, labels = synthetic_liver_volume((8, 64, 64), seed=1 + index)
        write_nifti(folder / "lits" / f"volume-{index}.nii", np.rint(case_hu).astype(np.int16))
        write_nifti(folder / "lits" / f"segmentation-{index}.nii", labels)
    assert nibabel.load(str(folder / "ct.nii.gz")).shape == (96, 96, 8)
    return folder


def example_environment(home: Path) -> dict:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("UNET3PLUS_") and key.lower() not in ("http_proxy", "https_proxy",
                                                                               "all_proxy", "no_proxy")}
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, every request fails at once
    environment.update({
        "UNET3PLUS_OFFLINE": "1", "UNET3PLUS_HOME": str(home),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "HTTP_PROXY": closed, "HTTPS_PROXY": closed, "http_proxy": closed, "https_proxy": closed,
        "ALL_PROXY": closed, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
    })
    return environment


def run_block(block: Block, folder: Path, environment: dict) -> subprocess.CompletedProcess:
    if block.language == "bash":
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    else:
        command = [sys.executable, "-c", block.code]
    return subprocess.run(command, cwd=folder, env=environment, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=BLOCK_TIMEOUT_S)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=page_name)
def test_page_examples_run(page, docs_fixture_folder, tmp_path):
    folder, home = tmp_path / "work", tmp_path / "home"
    shutil.copytree(docs_fixture_folder, folder)
    home.mkdir()
    environment = example_environment(home)
    for block in extract_blocks(page):
        if block.skip_reason:
            continue
        result = run_block(block, folder, environment)
        assert result.returncode == 0, (
            f"{block.page}:{block.line}: the {block.language} example starting {block.first_line!r} exited with "
            f"{result.returncode}\n--- stdout (tail)\n{result.stdout[-3000:]}\n--- stderr (tail)\n{result.stderr[-5000:]}")


# ---------------------------------------------------------------------------------------------------- site

@pytest.mark.slow
def test_mkdocs_strict_build(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert not warnings, "\n".join(warnings)
    cli_page = (tmp_path / "site" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("demo", "predict", "evaluate", "export", "publish", "train"):
        assert f"unet3plus {command}" in cli_page, command
    assert "create_network" in (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")


def test_api_page_renders_the_whole_public_api():
    import unet3plus

    rendered = set(re.findall(r"^::: unet3plus\.(\w+)\s*$", (DOCS / "api.md").read_text(encoding="utf-8"), re.M))
    assert set(unet3plus.__all__) - {"__version__"} <= rendered, sorted(set(unet3plus.__all__) - rendered)
