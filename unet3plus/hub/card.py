"""MindSpore Hub cards: read one (local file or URL) to the verified checkpoint it points at, or write one.

The format is the published card's (``cards/unet3plus_lits2017.md``): a header between ``---`` lines with
flat ``key: value`` fields and an ``asset`` list holding ``asset-link`` and ``asset-sha256``, then a
free-text body. Only the header is read here; ``asset-sha256`` is what makes the asset trustworthy, so a
card without a valid one is refused. A remote card comes through the one fetch path (``download.fetch_bytes``:
deadline, redirects, retries, redaction) and may be at most ``CARD_MAX_BYTES``; messages name a card URL
without its credentials (``HubCard.shown``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union
from urllib.parse import urlparse, urlsplit

from .download import ChecksumError, DownloadError, download_checkpoint, fetch_bytes, redact_url, sha256_of

CARD_FIELD = re.compile(r"^\s*(?:-\s*)?([\w-]+):[ \t]*(\S.*?)\s*$", re.M)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
CARD_MAX_BYTES = 1 << 20  # a card is a page of text; anything larger is not one


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

    @property
    def shown(self) -> str:
        return shown_location(self.location)


def is_url(text: str) -> bool:
    return urlparse(str(text)).scheme.lower() in ("http", "https")


def shown_location(location: str) -> str:
    """A card's location as messages show it: a URL without user info or query string, a path as it is."""
    return redact_url(location) if is_url(location) else location


def is_card(name: Union[str, "os.PathLike[str]"]) -> bool:
    """A hub card (a path, or a URL whose path, before any query string, ends in ``.md``) rather than a
    checkpoint or a registry name: the one place this is decided."""
    text = str(name)
    return (urlsplit(text).path if is_url(text) else text).lower().endswith(".md")


def parse_card(text: str, location: str) -> HubCard:
    parts = text.split("---")
    if len(parts) < 3:
        raise CardError(f"hub card {shown_location(location)} has no header between '---' lines; it is not a "
                        "MindSpore Hub card (write one with 'unet3plus publish')")
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
    if is_url(location):
        data = fetch_bytes(location, max_bytes=CARD_MAX_BYTES, what="hub card")
        return parse_card(decode_card(data, shown_location(location)), location)
    path = Path(location).expanduser()
    if not path.is_file():
        raise CardError(f"hub card {path} does not exist; check the path (or pass the card's URL)")
    if path.stat().st_size > CARD_MAX_BYTES:
        raise CardError(f"hub card {path} has {path.stat().st_size} bytes, more than {CARD_MAX_BYTES}, the most a "
                        "card may have; it is not a MindSpore Hub card: pass the card's .md file")
    return parse_card(decode_card(path.read_bytes(), str(path)), str(path))


def card_checkpoint(card: HubCard, *, cache_dir: Union[str, "os.PathLike[str]", None] = None,
                    progress: Optional[bool] = None) -> Path:
    """The verified local file of the card's asset: beside a local card (hub's layout) if there, else
    downloaded into the verified cache. Nothing unverified is returned."""
    expected, link = card.asset_sha256, card.asset_link
    if not SHA256_HEX.match(expected):
        raise CardError(f"hub card {card.shown} has no valid asset-sha256 (64 hexadecimal digits; found "
                        f"{expected or 'none'!r}), so its weights cannot be verified; ask the publisher for a card "
                        "written by 'unet3plus publish', or pass checkpoint=<url>, sha256=<known hash>")
    if not link:
        raise CardError(f"hub card {card.shown} has no asset-link; it does not say where its weights are")
    name = os.path.basename(urlparse(link).path) or "model.ckpt"
    if not card.is_remote:
        beside = Path(card.location).parent / name
        if beside.is_file():
            actual = sha256_of(beside)
            if actual != expected:
                raise ChecksumError(f"{beside} has SHA-256 {actual} but its card {card.shown} says {expected}; "
                                    "the file or the card was altered: get both again from the publisher")
            return beside
    return download_checkpoint(link, expected, cache_dir=cache_dir, progress=progress, filename=name)
