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


def _layer(size: int) -> bytes:
    """A gzipped tar holding one file of `size` random bytes (random so gzip cannot shrink it)."""
    import gzip
    import io
    import os as _os
    import tarfile
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("payload")
        info.size = size
        tar.addfile(info, io.BytesIO(_os.urandom(size)))
    return gzip.compress(raw.getvalue()), raw.getvalue()


class _TrickleHandler(_Handler):
    """Serves a real one-layer image for any name; the layer blob comes a few bytes at a time."""

    def do_GET(self) -> None:  # noqa: N802
        server = self.server
        server.requests.append(self.path)  # type: ignore[attr-defined]
        if self.path.rstrip("/") == "/v2":
            return super().do_GET()
        if "/manifests/" in self.path:
            return self._send(server.manifest, "application/vnd.docker.distribution.manifest.v2+json")  # type: ignore[attr-defined]
        digest = self.path.rsplit("/", 1)[-1]
        blob = server.blobs.get(digest)  # type: ignore[attr-defined]
        if blob is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if digest != server.layer_digest:  # type: ignore[attr-defined]
            return self._send(blob, "application/octet-stream")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        for start in range(0, len(blob), server.chunk):  # type: ignore[attr-defined]
            if server.stalled.wait(server.interval):  # type: ignore[attr-defined]
                break  # closing: stop trickling
            try:
                self.wfile.write(blob[start:start + server.chunk])  # type: ignore[attr-defined]
                self.wfile.flush()
            except OSError:
                break
        self.close_connection = True

    do_HEAD = do_GET

    def _send(self, body: bytes, content_type: str) -> None:
        import hashlib
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)


class TrickleRegistry(StallRegistry):
    """A registry whose single layer arrives `chunk` bytes every `interval` seconds: progress, but slow."""

    def __init__(self, layer_bytes: int = 256 * 1024, chunk: int = 1024, interval: float = 0.2) -> None:
        import hashlib
        import json
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
        self.server.daemon_threads = True
        self.server.requests = []  # type: ignore[attr-defined]
        self.server.stalled = threading.Event()  # type: ignore[attr-defined]
        self.server.chunk, self.server.interval = chunk, interval  # type: ignore[attr-defined]
        layer, tar = _layer(layer_bytes)
        digest = lambda data: "sha256:" + hashlib.sha256(data).hexdigest()  # noqa: E731
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [digest(tar)]}}).encode()
        self.server.layer_digest = digest(layer)  # type: ignore[attr-defined]
        self.server.blobs = {digest(config): config, digest(layer): layer}  # type: ignore[attr-defined]
        self.server.manifest = json.dumps({  # type: ignore[attr-defined]
            "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(config), "digest": digest(config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(layer), "digest": digest(layer)}]}).encode()
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)


class MirrorTrickleRegistry(TrickleRegistry):
    """A real, runnable image (the test busybox from 127.0.0.1:5000) under any name, made new
    (a random file added to its layer, so the engine has none of it) and trickling in."""

    def __init__(self, source: str = "127.0.0.1:5000/condor-docker-test/busybox:1", pad_bytes: int = 512 * 1024,
                 chunk: int = 16 * 1024, interval: float = 0.25) -> None:
        import gzip
        import hashlib
        import io
        import json
        import os as _os
        import tarfile
        import urllib.request
        registry, rest = source.split("/", 1)
        repository, tag = rest.rsplit(":", 1)

        def fetch(path: str, accept: str | None = None) -> bytes:
            request = urllib.request.Request(f"http://{registry}/v2/{repository}/{path}",
                                             headers={"Accept": accept} if accept else {})
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.read()
        manifest = json.loads(fetch(f"manifests/{tag}", "application/vnd.docker.distribution.manifest.v2+json"))
        config = json.loads(fetch(f"blobs/{manifest['config']['digest']}"))
        old_layer = gzip.decompress(fetch(f"blobs/{manifest['layers'][0]['digest']}"))
        tar_bytes = io.BytesIO()
        with tarfile.open(fileobj=io.BytesIO(old_layer)) as old, tarfile.open(fileobj=tar_bytes, mode="w") as new:
            for member in old.getmembers():
                new.addfile(member, old.extractfile(member) if member.isfile() else None)
            pad = tarfile.TarInfo("condor-docker-pad")
            pad.size = pad_bytes
            new.addfile(pad, io.BytesIO(_os.urandom(pad_bytes)))
        layer = gzip.compress(tar_bytes.getvalue())
        digest = lambda data: "sha256:" + hashlib.sha256(data).hexdigest()  # noqa: E731
        config["rootfs"]["diff_ids"] = [digest(tar_bytes.getvalue())]
        config_blob = json.dumps(config).encode()
        manifest["config"].update(size=len(config_blob), digest=digest(config_blob))
        manifest["layers"] = [dict(manifest["layers"][0], size=len(layer), digest=digest(layer))]
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
        self.server.daemon_threads = True
        self.server.requests = []  # type: ignore[attr-defined]
        self.server.stalled = threading.Event()  # type: ignore[attr-defined]
        self.server.chunk, self.server.interval = chunk, interval  # type: ignore[attr-defined]
        self.server.layer_digest = digest(layer)  # type: ignore[attr-defined]
        self.server.blobs = {digest(config_blob): config_blob, digest(layer): layer}  # type: ignore[attr-defined]
        self.server.manifest = json.dumps(manifest).encode()  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
