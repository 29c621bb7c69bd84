"""A real threaded HTTP server on 127.0.0.1 that serves given bytes and misbehaves on request.

Each served path has a plan: a list of actions used by successive GET requests, then ``"ok"`` forever:

* ``"ok"``: the file (206 with ``Content-Range`` for a Range request when ranges are supported)
* ``"500"`` / ``"404"``: that status
* ``"truncate:N"``: promise the full length, send N bytes, close the connection cleanly
* ``"reset:N"``: send N bytes, then reset the connection (RST)
* ``"stall:S"``: send the headers and a few bytes, then go silent for S seconds
* ``"wrong"``: the full length with one byte flipped
* ``"redirect:/path"``: 302 to another path on this server
* ``"trickle:S"``: promise the full length, then send one byte every S seconds
* ``"endless"``: no Content-Length; the file, then zeros until the client hangs up
* ``"range-from:K"``: 206 with the bytes from offset K, whatever range was asked for

Used by the download tests and benchmarks/bench_download.py.
"""
from __future__ import annotations

import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Sequence, Tuple


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        owner = self.server.owner
        action = owner._next_action(self.path, self.headers.get("Range"))
        entry = owner.files.get(self.path)
        if entry is None or action == "404":
            return self._status(404)
        if action == "500":
            return self._status(500)
        if action.startswith("redirect:"):
            self.send_response(302)
            self.send_header("Location", action.split(":", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data, support_range = entry
        if action == "endless":
            return self._endless(data)
        if action == "wrong":
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start = 0
        match = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if action.startswith("range-from:"):
            match = re.match(r"(\d+)", action.split(":", 1)[1])
        if (support_range or action.startswith("range-from:")) and match and int(match.group(1)) < len(data):
            start = int(match.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = memoryview(data)[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        kind, _, amount = action.partition(":")
        if kind == "truncate":
            self.wfile.write(body[:int(amount)])
            self.wfile.flush()
            self.close_connection = True
        elif kind == "reset":
            self.wfile.write(body[:int(amount)])
            self.wfile.flush()
            time.sleep(0.2)  # let the client read what was sent before the reset
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif kind == "trickle":
            try:
                for offset in range(len(body)):
                    self.wfile.write(body[offset:offset + 1])
                    self.wfile.flush()
                    time.sleep(float(amount))
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif kind == "stall":
            self.wfile.write(body[:1024])
            self.wfile.flush()
            time.sleep(float(amount))
            self.close_connection = True
        else:
            self._write_throttled(body)

    def _write_throttled(self, body: memoryview) -> None:
        chunk, delay = 1 << 16, self.server.owner.chunk_delay_s
        try:
            for offset in range(0, len(body), chunk):
                self.wfile.write(body[offset:offset + chunk])
                if delay:
                    time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up

    def _endless(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        zeros = bytes(1 << 16)
        try:
            self.wfile.write(data)
            while True:
                self.wfile.write(zeros)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _status(self, code: int) -> None:
        message = f"HTTP {code} from the test server".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(message)))
        self.end_headers()
        self.wfile.write(message)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: "LoopbackServer") -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class LoopbackServer:
    """Context manager: ``with LoopbackServer() as server: server.serve("/a.ckpt", data); server.url("/a.ckpt")``."""

    def __init__(self, chunk_delay_s: float = 0.0) -> None:
        self.files: Dict[str, Tuple[bytes, bool]] = {}
        self.plans: Dict[str, List[str]] = {}
        self.requests: List[Tuple[str, Optional[str]]] = []  # (path, Range header)
        self.chunk_delay_s = chunk_delay_s
        self._lock = threading.Lock()
        self._server: Optional[_Server] = None

    def serve(self, path: str, data: bytes, plan: Sequence[str] = (), support_range: bool = True) -> str:
        self.files[path] = (bytes(data), support_range)
        self.plans[path] = list(plan)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def requests_for(self, path: str) -> List[Optional[str]]:
        """The Range headers (None when absent) of every request for ``path``, in order."""
        with self._lock:
            return [range_header for requested, range_header in self.requests if requested == path]

    def _next_action(self, path: str, range_header: Optional[str]) -> str:
        with self._lock:
            self.requests.append((path, range_header))
            plan = self.plans.get(path)
            return plan.pop(0) if plan else "ok"

    def __enter__(self) -> "LoopbackServer":
        self._server = _Server(self)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
