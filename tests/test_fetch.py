"""Hub cards come through the one fetch path: deadline, size cap, redaction and the user's SHA-256 beside a card
(loopback servers and reserved names only)."""
from __future__ import annotations

import hashlib
import logging

import pytest

import unet3plus.hub.transfer as transfer_module
from unet3plus import create_network
from unet3plus.cli import main
from unet3plus.hub import ChecksumError, DownloadError, OfflineError
from unet3plus.hub.card import CARD_MAX_BYTES, CardError, is_card, read_card

pytestmark = pytest.mark.usefixtures("isolated_cache")

WEIGHTS = b"not really weights, never fetched by these tests"
WEIGHTS_SHA = hashlib.sha256(WEIGHTS).hexdigest()
SECRETS = ("hunter2", "s3cr3t")


def card_text(asset_link: str, sha256: str = WEIGHTS_SHA) -> bytes:
    return ("# test\n\n---\n\nmodel-name: test\n\nasset:\n\n-\n    file-format: ckpt\n"
            f"    asset-link: <{asset_link}>\n    asset-sha256: {sha256}\n\n---\n\nbody\n").encode()


def with_secrets(url: str) -> str:
    return url.replace("http://", "http://alice:hunter2@") + "?token=s3cr3t"


def test_a_card_url_with_a_query_string_is_a_card():
    assert is_card("https://models.example/cards/liver.md?token=abc")
    assert is_card("cards/liver.MD") and not is_card("https://models.example/liver.ckpt?x=a.md")
    assert not is_card("unet3plus_lits2017")


def test_a_trickling_card_stops_at_the_deadline(server, monkeypatch):
    url = server.serve("/card.md", card_text(server.url("/w.ckpt")), plan=["trickle:0.2"] * 5)
    monkeypatch.setenv("UNET3PLUS_DOWNLOAD_DEADLINE", "1")
    with pytest.raises(DownloadError, match=r"could not download .*card\.md within 1 s \(UNET3PLUS_DOWNLOAD_DEADLINE\)"):
        read_card(url)


def test_a_card_larger_than_1_mib_is_refused_without_reading_it(server, monkeypatch):
    def never_streamed(*args, **kwargs):
        raise AssertionError("the body was read")

    url = server.serve("/big.md", b"x" * (2 << 20))
    with monkeypatch.context() as patch:
        patch.setattr(transfer_module.Transfer, "_stream", never_streamed)  # refused on Content-Length alone
        with pytest.raises(DownloadError, match=f"more than {CARD_MAX_BYTES} bytes, the most a hub card may have"):
            read_card(url)
    server.serve("/endless.md", b"x" * 1000, plan=["endless"])  # no Content-Length: stopped past the cap
    with pytest.raises(DownloadError, match="the most a hub card may have") as caught:
        read_card(server.url("/endless.md"))
    assert "\n" not in str(caught.value)


def test_a_local_card_larger_than_1_mib_is_refused(tmp_path):
    card = tmp_path / "huge.md"
    card.write_bytes(card_text("http://127.0.0.1:9/w.ckpt") + b" " * CARD_MAX_BYTES)
    with pytest.raises(CardError, match="more than 1048576, the most a card may have"):
        read_card(card)


def test_credentials_and_tokens_never_reach_errors_or_logs(server, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    missing = with_secrets(server.url("/missing.md"))
    with pytest.raises(DownloadError) as caught:
        read_card(missing)
    assert "HTTP 404" in str(caught.value) and "***@" in str(caught.value)
    # a card whose asset link carries credentials, served under a URL with a query string
    server.serve("/card.md?token=s3cr3t", card_text(with_secrets(server.url("/gone.ckpt"))))
    status = main(["export", "--format", "onnx", "--checkpoint", with_secrets(server.url("/card.md")),
                   "--out", str(tmp_path / "m.onnx")])
    assert status == 3 and server.requests_for("/card.md?token=s3cr3t")  # fetched as a card, not a checkpoint
    captured = capsys.readouterr()
    shown = str(caught.value) + captured.out + captured.err + caplog.text
    assert "gone.ckpt" in captured.err and "HTTP 404" in captured.err
    assert not [secret for secret in SECRETS if secret in shown], shown
    server.serve("/nohash.md?token=s3cr3t", card_text(server.url("/w.ckpt"), sha256="see-the-release-page"))
    with pytest.raises(CardError, match=r"nohash\.md\?<redacted> has no valid asset-sha256") as caught:
        create_network(with_secrets(server.url("/nohash.md")))
    assert not [secret for secret in SECRETS if secret in str(caught.value)]


def test_a_wrong_sha256_beside_a_remote_card_is_refused_naming_both(server):
    url = server.serve("/card.md", card_text(server.url("/w.ckpt")))
    wrong = "ab" * 32
    with pytest.raises(ChecksumError, match=f"given \\({wrong}\\) is not the asset-sha256 .*{WEIGHTS_SHA}"):
        create_network(url, sha256=wrong)
    assert server.requests_for("/w.ckpt") == []  # refused before any weights are fetched


def test_offline_a_card_url_is_one_line_naming_the_way_out(server, monkeypatch):
    url = server.serve("/card.md", card_text(server.url("/w.ckpt")))
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    with pytest.raises(OfflineError, match="save the hub card and pass its local path"):
        read_card(url)
    assert server.requests_for("/card.md") == []
