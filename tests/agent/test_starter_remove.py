"""condor_rm while the job runs: the starter SIGTERMs the launcher, then runs JOB_EXIT with `remove`."""
from __future__ import annotations

import time

import pytest
from test_hooks_prepare import (  # noqa: F401
    USER,
    cluster_of,
    entry_points,
    make_starter,
    managed_containers,
)

pytestmark = [pytest.mark.root, pytest.mark.engine]


def test_condor_rm_stops_the_container_and_leaves_nothing(agent, make_scratch, real_job_ad,
                                                          make_starter):  # noqa: F811
    job = real_job_ad(Arguments="-c 'echo started; sleep 300'", JobMaxVacateTime=2)
    started = time.monotonic()
    outcome = make_starter(agent).run(make_scratch(USER, job), remove_after=3.0, vacate_time=15.0)
    elapsed = time.monotonic() - started
    assert outcome.state == "removed", outcome.describe() + agent.log_tail()
    assert outcome.stdout == "started\n", outcome.describe()
    # the launcher stopped the container within the job's grace, not the starter's hard kill
    assert elapsed < 3.0 + 15.0, outcome.describe()
    assert outcome.exit_signal is None or outcome.exit_signal != 9, outcome.describe()
    assert managed_containers(cluster_of(job)) == [], agent.log_tail()


def test_the_job_ad_file_keeps_the_original_job(agent, make_scratch, real_job_ad, make_starter):  # noqa: F811
    """The hook's edits live in the starter's copy only; .job.ad is what the launcher reads."""
    job = real_job_ad(Arguments="-c 'grep -c WantDocker $_CONDOR_JOB_AD; grep ^Cmd $_CONDOR_JOB_AD'")
    scratch = make_scratch(USER, job)
    outcome = make_starter(agent).run(scratch)
    assert outcome.state == "completed" and outcome.exit_code == 0, outcome.describe()
    with open(f"{scratch}/.job.ad") as stream:
        assert stream.read() == job
