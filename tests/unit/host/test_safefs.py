"""Race-safe opens: openat2 and its fallback, beneath a directory, no links, swapped directories."""
from __future__ import annotations

import os

import pytest

from condor_docker.host import safefs


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    """Run each test with openat2 and with the component-by-component O_NOFOLLOW walk."""
    if request.param == "walk":
        monkeypatch.setattr(safefs, "_OPENAT2_MISSING", [True])
    elif safefs._OPENAT2_MISSING[0]:
        pytest.skip("this kernel has no openat2")
    return request.param


def test_a_link_anywhere_in_the_path_is_refused(tmp_path, resolver):
    (tmp_path / "real" / "inner").mkdir(parents=True)
    os.symlink(tmp_path / "real", tmp_path / "link")
    fd = safefs.open_no_symlinks(str(tmp_path / "real" / "inner"))
    os.close(fd)
    with pytest.raises(OSError):
        safefs.open_no_symlinks(str(tmp_path / "link" / "inner"))
    with pytest.raises(OSError):
        safefs.open_no_symlinks(str(tmp_path / "link"))
    with pytest.raises(OSError):
        safefs.open_no_symlinks(str(tmp_path / "real" / ".." / "real"))


def test_open_beneath_stays_beneath_and_follows_no_link(tmp_path, resolver):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "file").write_text("x")
    os.symlink("/etc", tmp_path / "d" / "etc")
    parent = safefs.open_no_symlinks(str(tmp_path / "d"))
    try:
        os.close(safefs.open_beneath(parent, "sub"))
        os.close(safefs.open_beneath(parent, "file", directory=False))
        for name in ("etc", "etc/passwd", "../d", "/etc"):
            with pytest.raises(OSError):
                safefs.open_beneath(parent, name)
        with pytest.raises(OSError):
            safefs.open_beneath(parent, "file")          # not a directory
    finally:
        os.close(parent)


def test_a_swapped_directory_is_noticed_by_identity(tmp_path):
    (tmp_path / "dir_1").mkdir()
    fd = safefs.open_no_symlinks(str(tmp_path / "dir_1"))
    identity = safefs.DirIdentity.of_fd(fd)
    assert safefs.same_directory(str(tmp_path / "dir_1"), identity)
    os.rename(tmp_path / "dir_1", tmp_path / "moved")
    (tmp_path / "dir_1").mkdir()
    assert not safefs.same_directory(str(tmp_path / "dir_1"), identity)
    os.rmdir(tmp_path / "dir_1")
    os.symlink(tmp_path / "moved", tmp_path / "dir_1")
    assert not safefs.same_directory(str(tmp_path / "dir_1"), identity)   # same inode, but through a link
    os.close(fd)
