"""The worker's pass: every job runs in its own transaction and reports what it did."""

from __future__ import annotations

from haina.worker import run_once


def test_a_worker_pass_runs_every_job_and_none_fails(sessions, tenant):
    done = run_once(sessions)
    assert set(done) == {"orders_expired", "holds_expired", "idempotency_keys_purged",
                         "points_expired", "tiers_reevaluated", "analytics_refreshes_run"}
    assert all(count >= 0 for count in done.values()), done  # -1 marks a job that raised
