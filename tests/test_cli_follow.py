"""`sfbackup backup` follows its job until it ends, also when its worker died in a way that only a
reap notices (the exit handler could not record it, e.g. on a full disk): it must not wait forever."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from plugin.cli import _follow
from plugin.jobs.options import validate_request
from plugin.jobs.runtime import JobRuntime


def test_following_a_job_whose_worker_is_lost_ends_with_the_recorded_failure(home: Path) -> None:
    env = {"SF_INSTANCE_URL": "https://example.my.salesforce.com", "SF_ACCESS_TOKEN": "00D000000000042!secret"}
    runtime = JobRuntime(home, env=env)
    try:
        job = runtime.start_backup(validate_request(home=home), actor="test", spawn=False)
        with runtime.log.write_transaction() as tx:  # no worker ever took the lease, and it ran out
            tx.execute("UPDATE job_leases SET lease_until = 0 WHERE job_id = ?", (job.job_id,))
        out: list[Any] = []
        follower = threading.Thread(target=lambda: out.append(_follow(runtime, job.job_id, quiet=True)), daemon=True)
        follower.start()
        follower.join(timeout=30)
        assert out, "the follower was still waiting 30 s later"
        assert out[0].status == "failed" and out[0].error.code == "WORKER_DID_NOT_START"
    finally:
        runtime.close()
