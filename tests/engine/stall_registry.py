"""A loopback "registry" that answers /v2/ and then never answers the manifest request.

The engine treats 127.0.0.0/8 registries as insecure: it may try TLS first,
gets a plain-HTTP 400 for its ClientHello, and falls back to http.  Every
request other than GET /v2/ is read and then left hanging until `close()`, so a
pull through it stalls exactly where a dead registry would.
"""
from __future__ import annotations

import http.server
import socket
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        if self.path.rstrip("/") == "/v2":
            self.send_response(200)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self.server.stalled.wait()  # type: ignore[attr-defined]
        self.close_connection = True

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class StallRegistry:
    """`with StallRegistry() as reg: reg.reference("x/y:1")`; closes and frees its threads on exit."""

    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.requests = []  # type: ignore[attr-defined]
        self.server.stalled = threading.Event()  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def requests(self) -> list[str]:
        return self.server.requests  # type: ignore[attr-defined]

    def reference(self, name: str) -> str:
        return f"127.0.0.1:{self.port}/{name}"

    def __enter__(self) -> "StallRegistry":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.server.stalled.set()  # type: ignore[attr-defined]
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
