"""The request from the job and machine ads: the disk limit comes from the slot."""
from __future__ import annotations

import os

from testpaths import FIXTURES

from condor_docker.core import ads, request


# -- the disk limit comes from the slot ---------------------------------------------------------
def test_disk_limit_is_the_slots_disk():
    job = ads.read_ad_file(os.path.join(FIXTURES, "job.ad"))
    machine = ads.read_ad_file(os.path.join(FIXTURES, "machine.ad"))
    req = request.from_ads(job, machine, uid=1000, gid=1000, scratch_dir="/x", slot="slot1_1")
    assert req.disk_kb == 2048
    del machine["Disk"]
    assert request.from_ads(job, machine, uid=1000, gid=1000, scratch_dir="/x", slot="slot1_1").disk_kb == 125
