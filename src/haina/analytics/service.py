"""Analytics' public face: refresh jobs, member scores, segments, cohorts and charts.

A refresh is a job (``analytics_jobs``): :func:`start_refresh` queues it (the API answers at
once and runs nothing), ``haina worker`` runs it (:func:`run_queued_jobs`: the oldest queued job,
in a thread of the worker process), and ``haina analytics refresh`` runs one in the terminal
(:func:`run_job`). Whoever claims a job first runs it (a conditional update, so it runs once). A run reads the tenant's purchases
and, in one transaction, replaces the tenant's member scores, records the run and marks the job
succeeded: readers see the old scores or the new ones, never a mix.

The code lives in :mod:`.jobs` (queue, claim, progress, heartbeats, stale jobs), :mod:`.refresh`
(the pipeline that reads purchases and writes scores), :mod:`.runs` (runs, member scores,
cohorts, charts) and :mod:`.segments`; callers outside the package use this module.
"""

from __future__ import annotations

from .jobs import (
    HEARTBEAT,
    STALE_AFTER,
    OnProgress,
    fail_stale_jobs,
    get_job,
    list_jobs,
    run_job,
    run_queued_jobs,
    start_refresh,
    stop_worker_job,
    wait_for_worker_job,
)
from .personal import erase_member_analytics, export_member_analytics
from .runs import MEDIA_TYPES, UNITS, cohorts, get_run, list_runs, member_scores, plot
from .segments import (
    SEGMENT_NAMES,
    STAGE_NAMES,
    create_segment,
    delete_segment,
    get_segment,
    members_matching,
    segment_member_ids,
    segment_members,
    segments_overview,
)

__all__ = [
    "HEARTBEAT", "MEDIA_TYPES", "SEGMENT_NAMES", "STAGE_NAMES", "STALE_AFTER", "UNITS",
    "OnProgress", "cohorts", "create_segment", "delete_segment", "erase_member_analytics",
    "export_member_analytics", "fail_stale_jobs", "get_job", "get_run", "get_segment",
    "list_jobs", "list_runs", "member_scores", "members_matching", "plot", "run_job",
    "run_queued_jobs", "segment_member_ids", "segment_members", "segments_overview", "start_refresh", "stop_worker_job",
    "wait_for_worker_job",
]
