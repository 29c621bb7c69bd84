"""A SHA-256 the user gives is always checked: beside a local checkpoint and beside a hub card, not only for URLs."""
from __future__ import annotations

import shutil

import pytest

from unet3plus import create_network
from unet3plus.cli import main
from unet3plus.hub import ChecksumError
from unet3plus.hub.download import sha256_of

pytestmark = pytest.mark.usefixtures("isolated_cache")
WRONG = "0" * 64


def local_card(folder, checkpoint):
    """A hub card in the published card's layout whose asset lies beside it."""
    shutil.copy(checkpoint, folder / "weights.ckpt")
    card = folder / "card.md"
    card.write_text("# test\n\n---\n\nmodel-name: test\n\nasset:\n\n-\n    file-format: ckpt\n"
                    "    asset-link: <http://127.0.0.1:9/weights.ckpt>\n"
                    f"    asset-sha256: {sha256_of(checkpoint)}\n\n---\n\nbody\n")
    return card


def test_a_wrong_sha256_beside_a_local_checkpoint_is_refused_naming_both(golden_checkpoint):
    with pytest.raises(ChecksumError, match=f"{sha256_of(golden_checkpoint)}, not the expected {WRONG}"):
        create_network("unet3plus", checkpoint=golden_checkpoint, sha256=WRONG)
    with pytest.raises(ChecksumError, match="not 64 hexadecimal digits"):
        create_network("unet3plus", checkpoint=golden_checkpoint, sha256="nonsense")
    net = create_network("unet3plus", checkpoint=golden_checkpoint, sha256=sha256_of(golden_checkpoint).upper())
    assert net.load_report.complete


def test_a_wrong_sha256_beside_a_card_is_refused_naming_both(golden_checkpoint, tmp_path):
    card = local_card(tmp_path, golden_checkpoint)
    with pytest.raises(ChecksumError, match=f"not the asset-sha256 of hub card .*{sha256_of(golden_checkpoint)}"):
        create_network(str(card), sha256=WRONG)
    assert create_network(str(card), sha256=sha256_of(golden_checkpoint)).load_report.complete


@pytest.mark.parametrize("beside_a_card", [False, True])
def test_the_cli_refuses_a_wrong_sha256_in_one_line(golden_checkpoint, tmp_path, capsys, beside_a_card):
    checkpoint = local_card(tmp_path, golden_checkpoint) if beside_a_card else golden_checkpoint
    status = main(["export", "--format", "onnx", "--checkpoint", str(checkpoint), "--sha256", "nonsense", "--out",
                   str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip()
    assert status != 0 and len(err.splitlines()) == 1 and "64 hexadecimal digits" in err
    assert not (tmp_path / "m.onnx").exists()
