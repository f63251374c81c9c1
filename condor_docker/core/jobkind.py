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


# every attribute the checks above read: what a reader needs to tell whether an ad is ours
KIND_ATTRS = frozenset(name.lower() for name in ("WantDocker", "JobUniverse", "DockerImage", "WantContainer",
                                                  "ContainerImage", "ContainerImageSource"))


def may_be_ours(job_text: str) -> bool:
    """For an ad the full reader refused: whether it could be a job we run (then it is held).

    Read from its kind-deciding lines alone: the hook sees every job on the machine,
    and a vanilla job whose ad carries, say, Latin-1 bytes in its Arguments is
    HTCondor's to run, not ours to hold.  Lines that do not parse even alone
    count as ours, and so does text with no JobUniverse (not a starter's ad):
    a hold says why, where passing a docker job on would not.
    """
    try:
        ad = ads.parse_ad(ads.lines_named(job_text, KIND_ATTRS), "job ad's kind lines")
        # a kind line that refers elsewhere (`DockerImage = Img`, `WantDocker = Yes`) is
        # undefined alone: it may well be ours, so only plain values decide "not ours"
        unclear = any(isinstance(ad.eval(name), classad2.Value) for name in ad.keys())
    except Exception:   # a Failure, or anything classad2 raises
        return True
    return unclear or "JobUniverse" not in ad or is_docker_job(ad)   # the starter always writes JobUniverse
