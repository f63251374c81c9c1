"""Site configuration injected into a pool node: mounted files, directories, http(s) URLs.

Sites keep their pool's policy outside the image (a ConfigMap, a mounted
directory, a config server).  Every source is read once at start and copied into
the node's config.d after the generated files, in the order given, so a site can
override anything the role sets.  A source that cannot be read stops the node
with a message naming the source: a node that silently runs without its site
policy is worse than a node that does not start.
"""
from __future__ import annotations

import os
import re
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


def _decode(data: bytes, origin: str) -> str:
    if len(data) > MAX_BYTES:
        raise InjectionError(f"injected config {origin} is larger than {MAX_BYTES} bytes: "
                             "is it really an HTCondor config file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InjectionError(f"injected config {origin} is not UTF-8 text") from None


def fetch_url(url: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 (http/https only, checked)
            return _decode(reply.read(MAX_BYTES + 1), url)
    except urllib.error.HTTPError as err:
        raise InjectionError(f"cannot fetch injected config {url}: the server answered {err.code} {err.reason}; "
                             "check the URL or mount the file instead") from None
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        raise InjectionError(f"cannot fetch injected config {url} within {timeout:.0f} s: {reason}; "
                             "check that the server is reachable from this node, or mount the file instead") from None


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return _decode(handle.read(MAX_BYTES + 1), path)
    except OSError as err:
        raise InjectionError(f"cannot read injected config {path}: {err.strerror}; "
                             "check the mount (a file or a directory of config files)") from None


def collect(sources: list[str], timeout: float = DEFAULT_TIMEOUT) -> list[InjectedFile]:
    """Every source, expanded (a directory -> its files, sorted) and read, in order."""
    found: list[InjectedFile] = []
    for source in sources:
        if source.startswith(("http://", "https://")):
            base = source.rstrip("/").rsplit("/", 1)[-1] or "url"
            found.append(InjectedFile(source, _safe_name(len(found), base), fetch_url(source, timeout)))
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
