"""The two races of the trust model, run as a hostile job user in loops long enough to mean something.

1. root must never chown/chmod (or create) anything through a link the job
   swaps into its scratch dir: a nested scratch path, `<scratch>/tmp` and
   `<scratch>/var` flip between a real directory and a link to a root-owned
   victim directory while the agent is asked again and again;
2. a container must never mount a path the job can swap: at the moment the
   job learns its container exists (the `started` event, before the start),
   it replaces `<scratch>/tmp` by a link to another user's /tmp.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile

import pytest
from sectest import TEST_ROOT

pytestmark = [pytest.mark.root, pytest.mark.engine]
RACE_ATTEMPTS = 450
LAUNCH_ATTEMPTS = 40
LANES = 3


@pytest.fixture
def root_victim():
    """A root-owned 0755 directory (like /var/tmp's parent or /var/lib/docker/tmp) with a child."""
    path = tempfile.mkdtemp(prefix="victim-", dir=TEST_ROOT)
    os.chmod(path, 0o755)
    os.mkdir(os.path.join(path, "inner"), 0o755)
    os.mkdir(os.path.join(path, "tmp"), 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def untouched(path: str) -> bool:
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, d) for d in dirs] + [os.path.join(root, f) for f in files]:
            info = os.lstat(name)
            if info.st_uid != 0 or info.st_gid != 0 or stat.S_IMODE(info.st_mode) != 0o755:
                return False
    return sorted(os.listdir(path)) == ["inner", "tmp"] and os.listdir(os.path.join(path, "tmp")) == []


def test_root_never_follows_a_swapped_link(agent, attack, make_scratch, root_victim):
    scratch = make_scratch("cdtest1")
    result = attack("cdtest1", agent, "swap-tmp-race", scratch, root_victim, RACE_ATTEMPTS, timeout=300)
    assert untouched(root_victim), f"root changed the victim directory through a link: {result}"
    codes = result["codes"]
    assert sum(codes.values()) == RACE_ATTEMPTS
    assert result["swaps"] > RACE_ATTEMPTS, result          # the links really were flipping all along
    # the scratch dir itself is served every time; a nested path is refused every time, whatever its state
    third = RACE_ATTEMPTS // 3
    assert codes == {"prepare-nested:16": third, "launch-nested:16": third, "launch:ok": third}, result
    assert "Traceback" not in agent.log_text()


def test_a_container_never_mounts_what_the_job_swapped(agent, attack, make_scratch, test_users, run_as,
                                                        real_job_ad, managed_containers):
    victim = make_scratch("cdtest2")
    victim_tmp = os.path.join(victim, "tmp")
    os.mkdir(victim_tmp, 0o1777)
    os.chown(victim_tmp, *test_users["cdtest2"])
    os.chmod(victim_tmp, 0o1777)                   # as the private /tmp of another job used to be
    with open(os.path.join(victim_tmp, "victim-marker"), "w") as stream:
        stream.write("secret\n")
    command = "-c 'ls -a /tmp; echo pwned > /tmp/pwned && echo wrote'"
    lanes = [make_scratch("cdtest1", real_job_ad(Arguments=command)) for _ in range(LANES)]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(LANES) as pool:
        results = list(pool.map(lambda scratch: attack("cdtest1", agent, "mount-race", scratch, victim_tmp,
                                                       LAUNCH_ATTEMPTS, timeout=300), lanes))
    total = {key: sum(r[key] for r in results) for key in results[0]}
    assert total["attempts"] == total["ok"] == LANES * LAUNCH_ATTEMPTS, total
    assert total["wrote"] == total["ok"], total       # the job ran and wrote its own /tmp every time
    assert total["saw_victim"] == 0, total
    assert sorted(os.listdir(victim_tmp)) == ["victim-marker"]
    assert not managed_containers()
