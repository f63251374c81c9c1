"""engine/selftest_image.py: a real program, a loadable archive, the same bytes every time."""
from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import tarfile

import pytest

from condor_docker.engine import selftest_image


@pytest.mark.skipif(not selftest_image.supported(), reason=f"no built-in program for {platform.machine()}")
def test_the_program_runs_here_and_exits_zero(tmp_path):
    path = tmp_path / "true"
    path.write_bytes(selftest_image.exit_zero_elf())
    os.chmod(path, 0o755)
    assert subprocess.run([str(path)], timeout=10).returncode == 0


@pytest.mark.parametrize("machine,e_machine", [("x86_64", 0x3E), ("aarch64", 0xB7)])
def test_each_architecture_is_a_static_elf_for_it(machine, e_machine):
    elf = selftest_image.exit_zero_elf(machine)
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == e_machine and len(elf) < 200


def test_the_archive_is_what_docker_load_reads_and_never_changes():
    archive = selftest_image.image_archive("x86_64")
    assert archive == selftest_image.image_archive("x86_64")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == [selftest_image.BUILTIN_TEST_IMAGE]
        config = json.load(tar.extractfile(manifest[0]["Config"]))
        assert config["architecture"] == "amd64" and config["config"]["Cmd"] == ["true"]
        layer = tarfile.open(fileobj=tar.extractfile(manifest[0]["Layers"][0]))
        member = layer.getmember("bin/true")
        assert member.mode == 0o755 and member.uid == 0 and member.mtime == 0
