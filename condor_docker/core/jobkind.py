"""Which kind of job an ad describes: ours (docker universe, docker:// container job) or not.

Apart from core/request.py (which re-exports them) so that the hooks can ask
without importing the whole job model (its dataclasses, gpus, arguments):
PREPARE_JOB asks for every job, JOB_EXIT for an ad PREPARE_JOB did not rewrite.
"""
from __future__ import annotations

import classad2

from . import ads, imageref


def is_container_job(job_ad: classad2.ClassAd) -> bool:
    """`universe = container` (condor_submit: WantContainer = true), whatever the image's form."""
    return bool(ads.get_bool(job_ad, "WantContainer", False))


def is_docker_container_job(job_ad: classad2.ClassAd) -> bool:
    """`universe = container` with a docker:// image: ours to run, like a docker universe job."""
    return is_container_job(job_ad) and imageref.is_docker_url(
        ads.get_str(job_ad, "ContainerImage"), ads.get_str(job_ad, "ContainerImageSource"))


def is_docker_job(job_ad: classad2.ClassAd) -> bool:
    """A job we must run: WantDocker, JobUniverse 5 with a DockerImage, or a docker:// container job."""
    if ads.get_bool(job_ad, "WantDocker", False):
        return True
    if is_docker_container_job(job_ad):
        return True
    return ads.get_int(job_ad, "JobUniverse", 0) == 5 and ads.get_str(job_ad, "DockerImage") is not None
