"""MindSpore Hub cards: read one (local file or URL) to the verified checkpoint it points at, or write one.

The format is the published card's (``cards/unet3plus_lits2017.md``): a header between ``---`` lines with
flat ``key: value`` fields and an ``asset`` list holding ``asset-link`` and ``asset-sha256``, then a
free-text body. Only the header is read here; ``asset-sha256`` is what makes the asset trustworthy, so a
card without a valid one is refused.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union
from urllib.parse import urlparse

from .download import ChecksumError, DownloadError, OfflineError, download_checkpoint, is_offline, sha256_of

CARD_FIELD = re.compile(r"^\s*(?:-\s*)?([\w-]+):[ \t]*(\S.*?)\s*$", re.M)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
CARD_TIMEOUT_S = 30.0


class CardError(DownloadError):
    """A hub card that cannot be read or does not say which verified file to load."""


@dataclass(frozen=True)
class HubCard:
    location: str
    fields: Dict[str, str]

    @property
    def asset_link(self) -> str:
        return self.fields.get("asset-link", "")

    @property
    def asset_sha256(self) -> str:
        return self.fields.get("asset-sha256", "").lower()

    @property
    def is_remote(self) -> bool:
        return is_url(self.location)


def is_url(text: str) -> bool:
    return urlparse(str(text)).scheme.lower() in ("http", "https")


def is_card(name: Union[str, "os.PathLike[str]"]) -> bool:
    """A card path or URL rather than a registry name."""
    return str(name).lower().endswith(".md") or is_url(str(name))


def parse_card(text: str, location: str) -> HubCard:
    parts = text.split("---")
    if len(parts) < 3:
        raise CardError(f"hub card {location} has no header between '---' lines; it is not a MindSpore Hub card "
                        "(write one with 'unet3plus publish')")
    fields = {key: value.strip("<>") for key, value in CARD_FIELD.findall(parts[1])}
    return HubCard(location, fields)


def decode_card(data: bytes, location: str) -> str:
    """A card is UTF-8 text (as 'unet3plus publish' writes it); anything else is refused in one line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CardError(f"hub card {location} is not UTF-8 text (byte {error.start} is 0x{data[error.start]:02x}); "
                        "it is not a MindSpore Hub card or it is damaged: get the card again from its publisher") \
            from None


def read_card(location: Union[str, "os.PathLike[str]"]) -> HubCard:
    """A card from a local path or an http(s) URL (a small text file: fetched, not cached)."""
    location = str(location)
    if not is_url(location):
        path = Path(location).expanduser()
        if not path.is_file():
            raise CardError(f"hub card {path} does not exist; check the path (or pass the card's URL)")
        return parse_card(decode_card(path.read_bytes(), str(path)), str(path))
    if is_offline():
        raise OfflineError(f"UNET3PLUS_OFFLINE is set, so the card {location} cannot be fetched; save the card "
                           "locally and pass its path, or unset UNET3PLUS_OFFLINE")
    import requests

    try:
        response = requests.get(location, timeout=(10.0, CARD_TIMEOUT_S))
        response.raise_for_status()
    except requests.RequestException as error:
        raise CardError(f"cannot fetch the hub card {location}: {error}; check the URL") from None
    return parse_card(decode_card(response.content, location), location)


def card_checkpoint(card: HubCard, *, cache_dir: Union[str, "os.PathLike[str]", None] = None,
                    progress: Optional[bool] = None) -> Path:
    """The verified local file of the card's asset: beside a local card (hub's layout) if there, else
    downloaded into the verified cache. Nothing unverified is returned."""
    expected, link = card.asset_sha256, card.asset_link
    if not SHA256_HEX.match(expected):
        raise CardError(f"hub card {card.location} has no valid asset-sha256 (64 hexadecimal digits; found "
                        f"{expected or 'none'!r}), so its weights cannot be verified; ask the publisher for a card "
                        "written by 'unet3plus publish', or pass checkpoint=<url>, sha256=<known hash>")
    if not link:
        raise CardError(f"hub card {card.location} has no asset-link; it does not say where its weights are")
    name = os.path.basename(urlparse(link).path) or "model.ckpt"
    if not card.is_remote:
        beside = Path(card.location).parent / name
        if beside.is_file():
            actual = sha256_of(beside)
            if actual != expected:
                raise ChecksumError(f"{beside} has SHA-256 {actual} but its card {card.location} says {expected}; "
                                    "the file or the card was altered: get both again from the publisher")
            return beside
    return download_checkpoint(link, expected, cache_dir=cache_dir, progress=progress, filename=name)
