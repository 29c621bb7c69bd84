"""create_network names, the hub conf files loaded the way mindspore_hub loads them, the hub card, the CLI."""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import MappingProxyType

import mindspore as ms
import numpy as np
import pytest

from conftest import REPO_ROOT
from golden import read_published_card_header
from loopback_server import LoopbackServer
from unet3plus import UNet3Plus, create_network
from unet3plus.cli import main as cli_main
from unet3plus.hub import LITS2017, ChecksumError, registry
from unet3plus.hub.download import checkpoint_path, sha256_of
from unet3plus.hub.registry import PROJECT_URL, hub_card_path, list_models

pytestmark = pytest.mark.usefixtures("isolated_cache")

HUB_CONFIG_FILES = ("hub_conf.py", "mindspore_hub_conf.py")


@pytest.fixture
def golden_as_published(golden_checkpoint, monkeypatch):
    """Pretend the golden checkpoint is the published asset (its hash in the registry) and serve it on loopback."""
    config = dataclasses.replace(LITS2017, sha256=sha256_of(golden_checkpoint))
    entries = {name: dataclasses.replace(entry, config=config) for name, entry in registry.MODELS.items()}
    monkeypatch.setattr(registry, "MODELS", MappingProxyType(entries))
    with LoopbackServer() as server:
        monkeypatch.setenv("UNET3PLUS_CHECKPOINT_URL", server.serve("/mirror.ckpt", golden_checkpoint.read_bytes()))
        yield server


def golden_logits_match(net, golden_io) -> bool:
    net.set_train(False)
    return np.allclose(net(ms.Tensor(golden_io["input"])).asnumpy(), golden_io["logits"], atol=1e-4)


def test_architecture_names_build_without_weights(monkeypatch):
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")  # proves nothing is downloaded
    for name in ("unet3plus", "UNet3Plus", "unet3+", "UNET3+"):
        net = create_network(name)
        assert isinstance(net, UNet3Plus) and isinstance(net, ms.nn.Cell) and net.load_report is None
    net = create_network("unet3plus", 1, n_classes=3)  # positional and keyword arguments reach the network
    assert (net.in_channels, net.n_classes) == (1, 3)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as caught:
        create_network("unet4plus")
    assert "unet4plus" in str(caught.value) and all(name in str(caught.value) for name in list_models())
    assert set(list_models()) >= {"unet3plus_lits2017", "unet3plus", "unet3+"}


def test_local_checkpoint_path_loads_instead_of_the_published_asset(golden_checkpoint, golden_io, monkeypatch):
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    net = create_network("unet3plus_lits2017", checkpoint=golden_checkpoint)
    assert net.load_report.checkpoint_format == "training-step" and len(net.load_report.loaded) == 171
    assert golden_logits_match(net, golden_io)
    with pytest.raises(ValueError, match="not both"):
        create_network("unet3plus", pretrained=True, checkpoint=golden_checkpoint)


def test_pretrained_downloads_verifies_caches_and_loads(golden_as_published, golden_io, tmp_path):
    net = create_network("UNet3Plus_LiTS2017")  # pretrained by default
    published_sha256 = registry.get_pretrained_config("unet3plus_lits2017").sha256  # the fixture's stand-in
    cached = checkpoint_path(published_sha256, LITS2017.filename, tmp_path / "cache")  # by its hash, not the mirror's name
    assert cached.is_file() and net.load_report.source == str(cached)
    assert golden_logits_match(net, golden_io)
    transfer = create_network("unet3plus_lits2017", n_classes=2)  # from the cache: no second request
    assert list(transfer.load_report.newly_initialised) == ["outconv1.weight"]
    assert golden_as_published.requests_for("/mirror.ckpt") == [None]
    assert create_network("unet3+", pretrained=True).load_report.complete


def test_pretrained_rejects_a_mirror_that_serves_other_bytes(golden_checkpoint, tmp_path, monkeypatch):
    with LoopbackServer() as server:  # the real published hash, bytes that are not the published file
        monkeypatch.setenv("UNET3PLUS_CHECKPOINT_URL", server.serve("/mirror.ckpt", golden_checkpoint.read_bytes()))
        with pytest.raises(ChecksumError, match=LITS2017.sha256):
            create_network("unet3plus_lits2017")
    assert not (checkpoint_path(LITS2017.sha256, LITS2017.filename, tmp_path / "cache")).exists()


def load_hub_config(path: Path):
    """Import a conf file exactly as mindspore_hub/load.py does (by file path, module named after the file)."""
    spec = importlib.util.spec_from_file_location(path.name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("filename", HUB_CONFIG_FILES)
def test_hub_config_files_load_by_path_and_build_the_network(filename, golden_checkpoint, golden_io):
    module = load_hub_config(REPO_ROOT / filename)
    assert module.__doc__ and module.create_network is create_network
    net = module.create_network("UNet3+".lower())  # what mindspore_hub passes for this card
    assert isinstance(net, UNet3Plus) and net.load_report is None
    ms.load_param_into_net(net, ms.load_checkpoint(str(golden_checkpoint)))  # what hub does next
    assert golden_logits_match(net, golden_io)


def test_hub_config_files_work_from_a_checkout_without_installing(tmp_path):
    """Without site-packages' editable hook, the conf files find the package beside them."""
    probe = ("import importlib.util, sys\n"
             "for name in sys.argv[1:]:\n"
             "    spec = importlib.util.spec_from_file_location(name.rsplit('/', 1)[-1], name)\n"
             "    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
             "    print(type(module.create_network('unet3+')).__name__, sys.modules['unet3plus'].__file__)\n")
    environment = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])  # MindSpore, not unet3plus
    result = subprocess.run([sys.executable, "-S", "-c", probe, *(str(REPO_ROOT / name) for name in HUB_CONFIG_FILES)],
                            cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        kind, package_file = line.split()
        assert kind == "UNet3Plus" and Path(package_file).resolve().is_relative_to(REPO_ROOT.resolve())


def card_header(path: Path) -> dict:
    """The card's YAML header as {key: value} for its flat fields (enough to check facts without PyYAML)."""
    header = path.read_text().split("---")[1]
    return {key: value.strip().strip("<>") for key, value in re.findall(r"^\s*([\w-]+):\s*(\S.*)$", header, re.M)}


def test_hub_card_states_the_published_facts_and_points_at_this_project():
    header = card_header(hub_card_path())
    for key, value in read_published_card_header().items():  # every published field is kept but these two
        if key not in ("repo-link", "summary"):
            assert header[key] == value, key
    assert header["asset-link"] == LITS2017.url and header["asset-sha256"] == LITS2017.sha256
    assert header["repo-link"] == PROJECT_URL
    assert header["model-name"].lower() in list_models()  # what mindspore_hub passes to create_network
    assert ":" not in header["summary"]  # mindspore_hub rejects extra colons in plain fields
    for key, value in LITS2017.card.items():
        if key in header:
            assert header[key] == value, key


def test_real_mindspore_hub_local_load(tmp_path, golden_checkpoint, golden_io, monkeypatch):
    """mindspore_hub.load(card, source="local", pretrained=True) with the card beside a checkout.

    mindspore_hub is not a dependency (not on PyPI): this runs only where it is importable.
    """
    mindspore_hub = pytest.importorskip("mindspore_hub", reason="mindspore_hub is not installed (not on PyPI)")
    from mindspore_hub._utils import check

    # Its card validation resolves and opens the repo and asset links on the network; tests stay offline.
    monkeypatch.setattr(check.ValidMarkdown, "_validate_repo_link", lambda self, link: None)
    monkeypatch.setattr(sys, "path", list(sys.path))  # hub prepends the checkout to sys.path
    mindspore_hub.manage.set_hub_dir(str(tmp_path / "mscache"))
    (tmp_path / "unet3plus").symlink_to(REPO_ROOT, target_is_directory=True)  # `git clone <repo-link>`
    card = Path(shutil.copy(hub_card_path(), tmp_path / "unet3plus_lits2017.md"))
    (tmp_path / LITS2017.filename).symlink_to(golden_checkpoint)  # hub's own download target beside the card
    net = mindspore_hub.load(str(card), source="local", pretrained=True)
    assert isinstance(net, UNet3Plus)
    assert golden_logits_match(net, golden_io)  # hub's load_param_into_net stripped `network.` and loaded all 171


def test_cli_download_and_info(golden_as_published, tmp_path, capsys, monkeypatch):
    cached = checkpoint_path(registry.get_pretrained_config("unet3plus_lits2017").sha256, LITS2017.filename,
                             tmp_path / "cache")
    assert cli_main(["info"]) == 0
    assert "absent" in capsys.readouterr().out
    assert cli_main(["download", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(cached)
    assert cli_main(["info"]) == 0
    out = capsys.readouterr().out
    assert "present, SHA-256 verified" in out and str(cached) in out and LITS2017.url in out
    cached.write_bytes(b"corrupt")
    assert cli_main(["info"]) == 0 and "CORRUPT" in capsys.readouterr().out
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    assert cli_main(["download", "--cache-dir", str(tmp_path / "elsewhere")]) == 3  # the download status
    assert "UNET3PLUS_OFFLINE is set" in capsys.readouterr().err


def test_a_name_with_the_published_file_offline_behaves_as_online(golden_as_published, golden_checkpoint, monkeypatch):
    online = create_network("unet3plus_lits2017", n_classes=3, in_channels=1)  # downloaded: a stated transfer
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    offline = create_network("unet3plus_lits2017", checkpoint=golden_checkpoint, n_classes=3, in_channels=1)
    assert offline.load_report.newly_initialised == online.load_report.newly_initialised
    assert offline.model_config.input == online.model_config.input


def test_a_name_with_another_file_says_it_is_not_that_model(golden_checkpoint, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    with caplog.at_level("WARNING"):
        net = create_network("unet3plus_lits2017", checkpoint=golden_checkpoint)
    assert "is not the published unet3plus_lits2017 weights" in caplog.text and net.load_report.complete
    with pytest.raises(ValueError):  # not the published model: no implicit head transfer
        create_network("unet3plus_lits2017", checkpoint=golden_checkpoint, n_classes=3, in_channels=1)
