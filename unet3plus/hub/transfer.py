"""One bounded HTTP(S) transfer into a locked temporary file: the network half of ``download_checkpoint``.

Bounds, so that no server can keep a download (or the processes waiting on its lock) alive for ever:

* an overall deadline (``UNET3PLUS_DOWNLOAD_DEADLINE``), checked after every read, with each socket wait
  capped by the time left; retries and their backoff (capped at ``MAX_BACKOFF_S``) count against it;
* ``UNET3PLUS_DOWNLOAD_RETRIES`` bounds the failed attempts in a row that did not advance the file: a
  connection that drops after every 64 KiB or more keeps resuming (at the first backoff) until done;
* a size cap: the registry's expected size, else ``MAX_UNKNOWN_SIZE_BYTES``; more bytes are an error;
* every byte read is kept: reads return what has arrived (``read1``), so a resume starts exactly where the
  last connection stopped, and a 206 for a range other than the one asked for is never spliced in.

Redirect policy: https never becomes http, and a redirect never leads from a public address to a
loopback, link-local, private or otherwise non-global one (``check_redirect``); a URL the user gave that
is itself non-public (a loopback test server, an intranet mirror) may redirect within that network.
Names that do not resolve fail at once (no retries): that is no network or a wrong URL, not a blip.
Credentials in URLs (user info, query strings) are redacted from every message (``redact_url``), and from
urllib3's DEBUG log of each request, which names the path with its query string (``_RedactQueries``).
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import os
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass, fields
from typing import IO, Callable, List, Optional, Tuple
from urllib.parse import urljoin, urlsplit, urlunsplit

from ..errors import UserFacingError

MIRROR_VARIABLE = "UNET3PLUS_CHECKPOINT_URL"
OFFLINE_VARIABLE = "UNET3PLUS_OFFLINE"
RETRIES_VARIABLE = "UNET3PLUS_DOWNLOAD_RETRIES"
BACKOFF_VARIABLE = "UNET3PLUS_DOWNLOAD_BACKOFF"
TIMEOUT_VARIABLE = "UNET3PLUS_DOWNLOAD_TIMEOUT"
DEADLINE_VARIABLE = "UNET3PLUS_DOWNLOAD_DEADLINE"
STREAM_CHUNK_BYTES = 1 << 18  # the most one read returns
CONNECT_TIMEOUT_S = 10.0
MAX_REDIRECTS = 10
MAX_RETRIES = 100
MAX_BACKOFF_S = 30.0  # one wait between attempts never exceeds this
PROGRESS_BYTES = 1 << 16  # what a resumed attempt must add to count as progress, not a failure
MAX_UNKNOWN_SIZE_BYTES = 1 << 30  # the cap when the expected size is unknown (1 GiB)
LOCAL_CHECKPOINT_HINT = "pass a local checkpoint (--checkpoint PATH on the command line, checkpoint= in Python)"


class DownloadError(UserFacingError):
    """The checkpoint could not be fetched or verified; the message names the URL/path and what to do."""

    exit_status = 3  # the command line's status for download failures (see unet3plus.cli)


class ChecksumError(DownloadError):
    """Downloaded bytes do not have the expected SHA-256 (the file was deleted)."""


@dataclass(frozen=True)
class TransferSettings:
    """How hard to try: attempts in a row without progress, first backoff (doubles while attempts make no
    progress, capped at ``MAX_BACKOFF_S``), read timeout, and the overall deadline of one download (seconds)."""

    retries: int = 5
    backoff_s: float = 1.0
    read_timeout_s: float = 60.0
    deadline_s: float = 900.0

    def __post_init__(self) -> None:
        for field_, variable in zip(fields(self), _VARIABLES):
            _check_setting(getattr(self, field_.name), field_, variable)

    @classmethod
    def from_environment(cls) -> "TransferSettings":
        values = {}
        for field_, variable in zip(fields(cls), _VARIABLES):
            raw = os.environ.get(variable, "").strip()
            if raw:
                try:
                    values[field_.name] = int(raw) if field_.type in (int, "int") else float(raw)
                except ValueError:
                    raise DownloadError(f"{variable}={raw!r} is not a number; unset it or give e.g. "
                                        f"{field_.default}") from None
        return cls(**values)


_VARIABLES = (RETRIES_VARIABLE, BACKOFF_VARIABLE, TIMEOUT_VARIABLE, DEADLINE_VARIABLE)
_LIMITS = {"retries": (0, MAX_RETRIES, True), "backoff_s": (0.0, math.inf, True),  # each wait is capped anyway
           "read_timeout_s": (0.0, 86400.0, False), "deadline_s": (0.0, 7 * 86400.0, False)}


def _check_setting(value, field_, variable: str) -> None:
    name = field_.name
    low, high, zero_allowed = _LIMITS[name]
    integer_wanted = field_.type in (int, "int")
    valid = (isinstance(value, int if integer_wanted else (int, float)) and math.isfinite(value)
             and low <= value <= high and (zero_allowed or value > low))
    if not valid:
        bound = (">= 0" if zero_allowed else "> 0") + (f" and at most {high:g}" if math.isfinite(high) else "")
        raise DownloadError(f"{variable} (TransferSettings.{name}) is {value!r}; it must be a finite number "
                            f"{bound}: unset it or give e.g. {field_.default}")


def redact_url(url: str) -> str:
    """The URL without credentials: user info becomes ``***@`` and a query string ``?<redacted>``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, "<redacted>" if parts.query else "", ""))


def redact_text(text: str, url: str) -> str:
    """``text`` (e.g. a requests error naming the URL) with the URL's credentials removed."""
    parts = urlsplit(url)
    text = text.replace(url, redact_url(url))
    if parts.query:
        text = text.replace(parts.query, "<redacted>")
    if "@" in parts.netloc:
        text = text.replace(parts.netloc.rsplit("@", 1)[0] + "@", "***@")
    return text


class _RedactQueries(logging.Filter):
    """Replace the query string of any URL or path in a log record's arguments with ``<redacted>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(argument.split("?", 1)[0] + "?<redacted>" if isinstance(argument, str)
                                and "?" in argument else argument for argument in record.args)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactQueries())


def _global(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


def resolve(url: str) -> List[str]:
    """The addresses the URL's host resolves to; a name that does not resolve fails at once."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise DownloadError(
            f"cannot resolve the host {parts.hostname!r} of {redact_url(url)} ({error.strerror}): no network, or a "
            f"wrong URL. Offline, {LOCAL_CHECKPOINT_HINT}; or set {MIRROR_VARIABLE} to a reachable mirror") from None
    return sorted({info[4][0] for info in infos})


def check_redirect(source: str, target: str) -> None:
    """Refuse a redirect that leaves http(s), downgrades https to http, or leads from a public address to a
    non-public one (loopback, link-local, private, reserved: a server must not point us into our network)."""
    source_scheme, target_scheme = urlsplit(source).scheme.lower(), urlsplit(target).scheme.lower()
    if target_scheme not in ("http", "https") or (source_scheme == "https" and target_scheme != "https"):
        raise DownloadError(f"refusing the redirect from {redact_url(source)} to {redact_url(target)}: it would "
                            f"leave HTTPS; use an https mirror ({MIRROR_VARIABLE}) or a local checkpoint")
    if all(map(_global, resolve(source))) and not all(map(_global, resolve(target))):
        raise DownloadError(f"refusing the redirect from {redact_url(source)} to {redact_url(target)}: a public "
                            "server may not redirect to a loopback, link-local or private address; use a mirror "
                            f"({MIRROR_VARIABLE}) that serves the file itself, or a local checkpoint")


class _RetryableError(Exception):
    """A failure worth another attempt (connection, timeout, 5xx, short body)."""


class Transfer:
    """Fetch ``url`` into ``out`` (which may already hold a stale partial download to resume), hashing
    every byte written, within the settings' deadline and the size cap.

    ``expected_sha256`` None: the bytes are not checked here (a hub card, whose asset hash is what is
    checked); ``max_bytes`` caps a file of unknown size below ``MAX_UNKNOWN_SIZE_BYTES``; ``what`` and
    ``fallback`` name the file and the way around a failure in messages."""

    def __init__(self, url: str, expected_sha256: Optional[str], expected_size: Optional[int],
                 settings: TransferSettings, progress_bar: Optional[Callable[[Optional[int], int], object]] = None,
                 *, max_bytes: Optional[int] = None, what: str = "checkpoint",
                 fallback: str = LOCAL_CHECKPOINT_HINT) -> None:
        self.url, self.shown_url = url, redact_url(url)
        self.expected, self.expected_size = expected_sha256, expected_size
        self.max_bytes, self.what, self.fallback = max_bytes, what, fallback
        self.limit = expected_size or max_bytes or MAX_UNKNOWN_SIZE_BYTES
        self.settings = settings
        self.deadline = time.monotonic() + settings.deadline_s
        self.progress_bar = progress_bar
        self.received = 0
        self.digest = hashlib.sha256()
        self.resumed = False

    def run(self, out: IO[bytes]) -> None:
        """Download (continuing what ``out`` already holds) and verify; raises ``ChecksumError`` on a mismatch."""
        self._continue_partial(out)
        self._fetch(out)
        if self.expected is None:
            return
        actual = self.digest.hexdigest()
        if actual != self.expected and self.resumed:  # a resumed file may mix two versions: one clean retry
            self._restart(out)
            self._fetch(out)
            actual = self.digest.hexdigest()
        if actual != self.expected:
            raise ChecksumError(
                f"checkpoint downloaded from {self.shown_url} has SHA-256 {actual}, expected {self.expected} "
                f"({self.received} bytes); it was deleted. The server or mirror ({MIRROR_VARIABLE}) serves "
                f"other bytes: check the URL, or pass a verified local checkpoint")

    def _continue_partial(self, out: IO[bytes]) -> None:
        out.seek(0)
        for chunk in iter(lambda: out.read(1 << 20), b""):
            self.digest.update(chunk)
            self.received += len(chunk)
        if self.received > self.limit:
            self._restart(out)
        self.resumed = self.received > 0

    def _restart(self, out: IO[bytes]) -> None:
        out.seek(0)
        out.truncate()
        self.received = 0
        self.digest = hashlib.sha256()

    def _time_left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DownloadError(
                f"could not download {self.shown_url} within {self.settings.deadline_s:g} s ({DEADLINE_VARIABLE}); "
                f"got {self.received} of {self.expected_size or 'an unknown number of'} bytes. The server is too "
                f"slow: raise {DEADLINE_VARIABLE}, set {MIRROR_VARIABLE} to a faster mirror, or "
                f"{self.fallback}")
        return left

    def _fetch(self, out: IO[bytes]) -> None:
        import requests
        import urllib3

        budget = max(1, self.settings.retries)
        attempts = stalled = 0  # all attempts; failed attempts in a row that did not advance the file
        while True:
            attempts += 1
            before = self.received
            try:
                self._attempt(out)
                return
            except requests.exceptions.SSLError as error:  # retrying will not fix a certificate
                raise DownloadError(
                    f"TLS verification failed for {self.shown_url} ({redact_text(str(error), self.url)}); "
                    f"certificates are always checked: fix the system CA bundle (or REQUESTS_CA_BUNDLE), use a "
                    f"trusted mirror ({MIRROR_VARIABLE}), or {self.fallback}") from error
            except (_RetryableError, requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError) as error:
                # A resumed connection that advanced the file before it dropped is progress, not a failure: it
                # resets both the budget (RETRIES counts attempts in a row without progress) and the backoff.
                # Fresh starts and dribbles count, so a server that ignores Range or stalls stays bounded.
                stalled = 0 if before > 0 and self.received - before >= PROGRESS_BYTES else stalled + 1
                if stalled == budget:
                    in_a_row = f", the last {stalled} without progress" if attempts > stalled else ""
                    raise DownloadError(
                        f"could not download {self.shown_url} after {attempts} attempt(s){in_a_row}: "
                        f"{redact_text(str(error), self.url)}. Check the network or proxy, set {MIRROR_VARIABLE} "
                        f"to a reachable mirror, or set {OFFLINE_VARIABLE}=1 and {self.fallback}"
                    ) from error
                backoff = min(self.settings.backoff_s * 2.0 ** max(0, stalled - 1), MAX_BACKOFF_S)
                time.sleep(min(backoff, self._time_left()))

    def _attempt(self, out: IO[bytes]) -> None:
        headers = {"Accept-Encoding": "identity"}  # hash the bytes as stored, not a re-encoded stream
        if self.received:
            headers["Range"] = f"bytes={self.received}-"
        left = self._time_left()
        timeout = (min(CONNECT_TIMEOUT_S, left), min(self.settings.read_timeout_s, left))
        with _open(self.url, headers, timeout) as response:
            if response.status_code >= 500:
                raise _RetryableError(f"server answered HTTP {response.status_code}")
            if response.status_code == 416 and self.received:  # our range is past the end: start over
                self._restart(out)
                raise _RetryableError("server rejected the resume range (HTTP 416)")
            if response.status_code not in (200, 206):
                raise DownloadError(
                    f"downloading {self.shown_url} failed: HTTP {response.status_code} {response.reason}. Check "
                    f"the URL ({MIRROR_VARIABLE} if you set a mirror), or {self.fallback}")
            if response.status_code == 206:
                start = _range_start(response)
                if start != self.received:  # not the range asked for: never splice it in, fetch it whole
                    self._restart(out)
                    raise _RetryableError(f"server sent bytes from offset {start} when asked for offset "
                                          f"{self.received}; fetching the whole file again")
                self.resumed = self.resumed or self.received > 0
            elif self.received:  # 200 to a Range request: the whole file follows
                self._restart(out)
            length = response.headers.get("Content-Length", "")
            expected_end = self.received + int(length) if length.isdigit() else None
            if expected_end is not None and expected_end > self.limit:
                raise self._too_large(expected_end)
            self._stream(response, out, expected_end)
            if self.received < (expected_end or self.expected_size or 0):
                raise _RetryableError(f"connection closed after {self.received} of "
                                      f"{expected_end or self.expected_size} bytes")

    def _too_large(self, size: int) -> DownloadError:
        if self.expected_size:
            bound = f"the expected {self.expected_size} bytes"
        elif self.max_bytes:
            bound = f"{self.max_bytes} bytes, the most a {self.what} may have"
        else:
            bound = f"{MAX_UNKNOWN_SIZE_BYTES} bytes, the most accepted without a known size"
        return DownloadError(f"{self.shown_url} sends {size} bytes or more, more than {bound}; stopped. The server "
                             f"or mirror ({MIRROR_VARIABLE}) serves another file: check the URL, or {self.fallback}")

    def _stream(self, response, out: IO[bytes], expected_end: Optional[int]) -> None:
        """Write what each read returns as it arrives, while a helper thread hashes the same bytes.

        ``read1`` returns whatever has arrived (at most ``STREAM_CHUNK_BYTES``), so the deadline is checked
        after every read however slowly the server sends, and nothing read is lost when the connection
        drops. Socket reads, file writes and hashlib release the GIL, so hashing overlaps the transfer.
        """
        raw = response.raw
        read = getattr(raw, "read1", raw.read)  # urllib3 >= 2 has read1
        bar = self.progress_bar(expected_end, self.received) if self.progress_bar else None
        hasher = _HashingThread(self.digest)
        try:
            while True:
                self._time_left()
                chunk = read(min(STREAM_CHUNK_BYTES, self.limit - self.received + 1), decode_content=False)
                if not chunk:
                    break
                out.write(chunk)
                hasher.feed(chunk)
                self.received += len(chunk)
                if self.received > self.limit:
                    raise self._too_large(self.received)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            hasher.finish()  # from here on the digest covers exactly the bytes written
            out.flush()
            if bar is not None:
                bar.close()


class _HashingThread:
    """Feed chunks, in order, to a hash object on a background thread."""

    _DONE = object()

    def __init__(self, digest) -> None:
        self._digest = digest
        self._chunks: "queue.Queue" = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="unet3plus-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for chunk in iter(self._chunks.get, self._DONE):
            self._digest.update(chunk)

    def feed(self, chunk: bytes) -> None:
        self._chunks.put(chunk)

    def finish(self) -> None:
        self._chunks.put(self._DONE)
        self._thread.join()


def _range_start(response) -> Optional[int]:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _open(url: str, headers: dict, timeout: Tuple[float, float]):
    """GET ``url`` streaming, following redirects by hand so that each one passes ``check_redirect``."""
    import requests

    for _ in range(MAX_REDIRECTS + 1):
        response = requests.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=False)
        if not response.is_redirect:
            return response
        target = urljoin(url, response.headers["Location"])
        response.close()
        check_redirect(url, target)
        url = target
    raise DownloadError(f"too many redirects from {redact_url(url)}; check the URL")
