"""The worker's pass: every job runs in its own transaction and reports what it did. Queued
analytics refreshes run here, and ``haina serve`` runs the worker as a process of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from haina.core.db import transaction
from haina.core.pgtemp import free_port
from haina.worker import run_once


def test_a_worker_pass_runs_every_job_and_none_fails(sessions, tenant):
    done = run_once(sessions)
    assert set(done) == {"orders_expired", "holds_expired", "idempotency_keys_purged",
                         "points_expired", "tiers_reevaluated", "analytics_refreshes_run",
                         "staff_sessions_purged", "booking_holds_expired",
                         "next_free_slots_refreshed",
                         "privacy_followed_up", "merchant_redactions_asked",
                         "retention_applied", "campaigns_run", "campaign_jobs_run",
                         "buyer_sign_ins_retired",
                         "brands_followed_up"}
    assert all(count >= 0 for count in done.values()), done  # -1 marks a job that raised


def test_a_worker_pass_runs_a_queued_analytics_refresh_to_its_end(sessions, tenant):
    from haina.analytics import service
    from haina.analytics.schemas import RefreshIn

    with transaction(sessions) as s:
        queued = service.start_refresh(s, tenant, RefreshIn())
    assert queued.status == "queued"
    assert run_once(sessions)["analytics_refreshes_run"] == 1
    assert service.wait_for_worker_job(timeout=60) == queued.id
    with transaction(sessions) as s:
        job = service.get_job(s, tenant, queued.id)
    assert job.status == "failed" and "no purchases to analyse" in job.message  # no orders
    assert job.started_at is not None and job.finished_at >= job.started_at
    assert run_once(sessions)["analytics_refreshes_run"] == 0  # nothing left to start


def _children(pid: int) -> dict[int, str]:
    """A process's children and their command lines (Linux /proc)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            found[int(child)] = cmdline.replace(b"\0", b" ").decode()
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("with_worker", [True, False])
def test_serve_runs_the_worker_as_its_own_process_and_stops_it(tmp_path, with_worker,
                                                              sqlite_template):
    # a copy of the migrated template (a `haina migrate` process cost ~3 s of CPU; the command
    # itself is tested in test_cli and test_migrations)
    shutil.copyfile(sqlite_template, tmp_path / "haina.db")
    url = f"sqlite:///{tmp_path / 'haina.db'}"
    env = {**os.environ, "HAINA_DATABASE_URL": url}
    port = free_port()
    args = ["serve", "--port", str(port)] + ([] if with_worker else ["--no-worker"])
    serve = subprocess.Popen([sys.executable, "-m", "haina.cli", *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200:
                    break
            except httpx.ConnectError:
                time.sleep(0.1)
        children = _children(serve.pid)
        worker_pids = [pid for pid, cmdline in children.items() if "haina.cli worker" in cmdline]
        assert len(worker_pids) == (1 if with_worker else 0), children
    finally:
        serve.terminate()
        serve.wait(30)
    assert serve.returncode == 0, serve.stderr.read()
    for pid in worker_pids:  # stopped with serve, not left behind
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid)

