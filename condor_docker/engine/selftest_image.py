"""The built-in self-test image: made here, loaded into the engine, never pulled.

DOCKER_PERFORM_TEST needs an image that every execute point has, including those with
no registry and no Docker Hub.  This one is built in memory, byte for byte the same on
every machine (so the same image id everywhere): one layer holding /bin/true, a static
ELF program of a few dozen instructions that only exits 0, for the machine's own
architecture.  It is loaded with the engine's image load (`POST /images/load`, what
`docker load` does), only when it is missing; an admin's CONDOR_DOCKER_TEST_IMAGE
replaces it.  The image cache never evicts it (image_cache._protected).
"""
from __future__ import annotations

import hashlib
import io
import json
import platform
import struct
import tarfile

# "localhost/": a name no registry of the Docker Hub or a mirror answers for; it is only ever loaded
BUILTIN_TEST_IMAGE = "localhost/condor_docker-selftest:1"

_BASE = 0x400000
_ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")

# exit(0), per architecture: (ELF e_machine, the engine's architecture name, machine code)
_EXIT_ZERO = {
    # mov eax, 60 (exit); xor edi, edi; syscall
    "x86_64": (0x3E, "amd64", bytes.fromhex("b83c000000" "31ff" "0f05")),
    # mov x0, #0; mov x8, #93 (exit); svc #0
    "aarch64": (0xB7, "arm64", bytes.fromhex("000080d2" "a80b80d2" "010000d4")),
}


def supported(machine: str | None = None) -> bool:
    return (machine or platform.machine()) in _EXIT_ZERO


def exit_zero_elf(machine: str | None = None) -> bytes:
    """A complete static ELF executable for `machine` (default: this one) that exits 0."""
    e_machine, _, code = _EXIT_ZERO[machine or platform.machine()]
    headers = _ELF_HEADER.size + _PROGRAM_HEADER.size
    size = headers + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)          # 64-bit, little endian, SysV
    elf = _ELF_HEADER.pack(ident, 2, e_machine, 1, _BASE + headers, _ELF_HEADER.size, 0, 0,
                           _ELF_HEADER.size, _PROGRAM_HEADER.size, 1, 0, 0, 0)
    load = _PROGRAM_HEADER.pack(1, 5, 0, _BASE, _BASE, size, size, 0x1000)   # PT_LOAD, R+X
    return elf + load + code


def _tar(members: list[tuple[str, bytes | None, int]]) -> bytes:
    """A deterministic tar: (name, data or None for a directory, mode); owner root, mtime 0."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = mode, 0, 0, 0, "root", "root"
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def image_archive(machine: str | None = None, tag: str = BUILTIN_TEST_IMAGE) -> bytes:
    """The image as `docker save` writes one (manifest.json, config, one layer): what the engine loads."""
    _, architecture, _ = _EXIT_ZERO[machine or platform.machine()]
    layer = _tar([("bin", None, 0o755), ("bin/true", exit_zero_elf(machine), 0o755)])
    layer_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": architecture, "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["true"],
                   "Labels": {"org.condor_docker.selftest": "true"}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "condor_docker selftest_image.py"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [f"{layer_id}/layer.tar"]}]).encode()
    return _tar([(f"{layer_id}", None, 0o755), (f"{layer_id}/layer.tar", layer, 0o644),
                 (config_name, config, 0o644), ("manifest.json", manifest, 0o644)])
