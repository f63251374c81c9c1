"""Site configuration injected into a pool node: mounted files, directories, http(s) URLs.

Sites keep their pool's policy outside the image (a ConfigMap, a mounted
directory, a config server).  Every source is read once at start and copied into
the node's config.d after the generated files, in the order given, so a site can
override anything the role sets.  A source that cannot be read stops the node
with a message naming the source: a node that silently runs without its site
policy is worse than a node that does not start.

Root trusts what it injects (HTCondor config can run commands: `include command`),
so a URL is https:// or pins its content (`URL#sha256=HEX`, plain http allowed
then), and all URLs together get one deadline for the whole transfer.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

MAX_BYTES = 1 << 20
DEFAULT_TIMEOUT = 20.0
# HTCondor's own LOCAL_CONFIG_DIR skips these; so do we when copying a directory
_SKIPPED = re.compile(r"(^\.|~$|\.(rpmsave|rpmnew|dpkg-old|dpkg-new|swp|bak|orig)$)")


class InjectionError(RuntimeError):
    """An injected config source could not be read; the message names it and the fix."""


@dataclass(frozen=True)
class InjectedFile:
    origin: str     # the path or URL it came from, for the header and the log
    name: str       # its file name in config.d
    text: str


def split_sources(text: str) -> list[str]:
    """CONDOR_DOCKER_POOL_CONFIG may list several sources, separated by commas or spaces."""
    return [item for item in re.split(r"[\s,]+", text or "") if item]


def _safe_name(index: int, base: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base)[:60] or "config"
    return f"90-injected-{index:02d}-{cleaned}"


def _decode(data: bytes, origin: str, what: str = "injected config") -> str:
    if len(data) > MAX_BYTES:
        raise InjectionError(f"{what} {origin} is larger than {MAX_BYTES} bytes: "
                             "is it really an HTCondor config file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InjectionError(f"{what} {origin} is not UTF-8 text") from None


_PIN = re.compile(r"^sha256=([0-9a-fA-F]{64})$")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: it could lead an https URL to plain http, or anywhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)  # keeps urllib's proxy handling (*_proxy variables)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def split_pin(url: str, what: str = "injected config") -> tuple[str, str]:
    """`URL[#sha256=HEX]` -> (URL without the fragment, the pinned hex digest or "").

    Root trusts what it fetches (an injected config can run commands with `include
    command`; authorized keys log people in): plain http:// is accepted only with a
    pinned digest, https:// with or without one.
    """
    base, sep, fragment = url.partition("#")
    pin = ""
    if sep:
        matched = _PIN.match(fragment)
        if not matched:
            raise InjectionError(f"{what} {url}: the URL's #{fragment} is not a pin: write #sha256=<64 hex digits> "
                                 "(sha256sum of the file)")
        pin = matched.group(1).lower()
    if base.startswith("http://") and not pin:
        raise InjectionError(f"{what} {url}: plain http:// is refused (anyone on the network path could change "
                             "what root reads): use https://, or pin the content as URL#sha256=<sha256sum of the "
                             "file>")
    return base, pin


def fetch_url(url: str, timeout: float = DEFAULT_TIMEOUT, what: str = "injected config") -> str:
    """The text at url, in at most `timeout` seconds in all, at most MAX_BYTES, its pin checked.

    urllib's timeout bounds each socket operation, not the whole transfer (a server sending
    a byte a second holds it forever), so the transfer runs in a daemon thread and is
    abandoned at the deadline: the node does not start, and the thread dies with it.
    """
    base, pin = split_pin(url, what)
    timeout = max(0.1, timeout)
    outcome: dict[str, object] = {}

    def transfer() -> None:
        try:
            with _OPENER.open(base, timeout=timeout) as reply:
                outcome["data"] = reply.read(MAX_BYTES + 1)
        except BaseException as err:  # noqa: BLE001 (handed to the waiting thread)
            outcome["error"] = err

    worker = threading.Thread(target=transfer, name=f"fetch {base}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise InjectionError(f"cannot fetch {what} {url} within {timeout:.0f} s: the transfer did not finish "
                             "(a slow or stalled server); check the server, or mount the file instead")
    err = outcome.get("error")
    if isinstance(err, urllib.error.HTTPError):
        hint = ("give the final URL (redirects are not followed)" if 300 <= err.code < 400
                else "check the URL or mount the file instead")
        raise InjectionError(f"cannot fetch {what} {url}: the server answered {err.code} {err.reason}; "
                             f"{hint}")
    if isinstance(err, (urllib.error.URLError, OSError, TimeoutError, ValueError)):
        reason = getattr(err, "reason", err)
        raise InjectionError(f"cannot fetch {what} {url} within {timeout:.0f} s: {reason}; "
                             "check that the server is reachable from this node, or mount the file instead")
    if err is not None:
        raise InjectionError(f"cannot fetch {what} {url}: {type(err).__name__}: {err}")
    data = outcome["data"]
    assert isinstance(data, bytes)
    if len(data) > MAX_BYTES:
        raise InjectionError(f"{what} {url} is larger than {MAX_BYTES} bytes: check the URL")
    if pin:
        got = hashlib.sha256(data).hexdigest()
        if not hmac.compare_digest(got, pin):
            raise InjectionError(f"refusing {what} {url}: its sha256 is {got}, not the pinned {pin}; "
                                 "the server sent something else: fix the server or the pin")
    return _decode(data, url, what)


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return _decode(handle.read(MAX_BYTES + 1), path)
    except OSError as err:
        raise InjectionError(f"cannot read injected config {path}: {err.strerror}; "
                             "check the mount (a file or a directory of config files)") from None


def collect(sources: list[str], timeout: float = DEFAULT_TIMEOUT) -> list[InjectedFile]:
    """Every source, expanded (a directory -> its files, sorted) and read, in order.

    URLs: `timeout` seconds for all of them together (see fetch_url, split_pin).
    """
    found: list[InjectedFile] = []
    for source in sources:  # every URL refused before anything is fetched
        if is_url(source):
            split_pin(source)
    deadline = time.monotonic() + timeout  # one deadline for all of them: start-up is bounded
    for source in sources:
        if is_url(source):
            base = split_pin(source)[0].rstrip("/").rsplit("/", 1)[-1] or "url"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InjectionError(f"cannot fetch injected config {source} within {timeout:.0f} s: the earlier "
                                     "URLs used the whole --config-timeout; raise it or mount the files instead")
            found.append(InjectedFile(source, _safe_name(len(found), base), fetch_url(source, remaining)))
        elif "://" in source:
            raise InjectionError(f"injected config {source}: only http:// and https:// URLs, files and "
                                 "directories are supported")
        elif os.path.isdir(source):
            for entry in sorted(os.listdir(source)):
                path = os.path.join(source, entry)
                if _SKIPPED.search(entry) or not os.path.isfile(path):
                    continue  # also skips Kubernetes' ..data symlink dirs of a ConfigMap mount
                found.append(InjectedFile(path, _safe_name(len(found), entry), _read_file(path)))
        elif os.path.exists(source):
            found.append(InjectedFile(source, _safe_name(len(found), os.path.basename(source)), _read_file(source)))
        else:
            raise InjectionError(f"injected config {source} does not exist: mount it, or fix "
                                 "--config / CONDOR_DOCKER_POOL_CONFIG")
    return found


def rendered(item: InjectedFile) -> str:
    return f"# injected by condor_docker pool-node from {item.origin}\n{item.text.rstrip()}\n"
