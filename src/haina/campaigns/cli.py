"""``haina campaigns``: create a campaign, list them, show one, read its results.

::

    haina campaigns create --tenant SLUG --name NAME (--segment seg_… | --members mem_…,mem_…)
        (--off 20.00 | --percent 10 [--max-discount 50.00]) [--min-spend 100.00]
        [--holdout 10] [--starts-at TIME] --ends-at TIME [--budget 5000.00] [--channel sms|email]
        [--seed TEXT] [--reevaluate-hours 24] [--wait]
    haina campaigns list --tenant SLUG [--status running]
    haina campaigns show --tenant SLUG cmp_…
    haina campaigns enrol --tenant SLUG cmp_… [--reevaluate]
    haina campaigns results --tenant SLUG cmp_… [--json] [--plot lift.svg]

A launch whose audience does not fit one batch (``HAINA_CAMPAIGN_BATCH_SIZE``, 1,000) is
queued for ``haina worker``; ``--wait`` (or ``enrol``) runs it here instead, batch by batch
with a progress bar, and follows the worker's progress when the worker has it already.

Bad input (an unknown merchant, segment or campaign, a time without a zone) is one line on
stderr and exit status 1 (``haina.cli.main`` prints the problem's detail).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from haina.core.errors import Invalid

app = typer.Typer(help="Campaigns: a coupon for a segment, a holdout, the lift.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
out = Console(soft_wrap=True)


def _sessions():
    from haina.core.config import get_settings
    from haina.core.db import make_engine, make_sessionmaker
    from haina.core.schema import ensure_current
    engine = make_engine(get_settings().database_url)
    ensure_current(engine)
    return make_sessionmaker(engine)


def _when(option: str, text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{option} {text!r} is not an ISO 8601 time such as "
                      "2026-12-31T00:00:00+08:00") from None
    if value.tzinfo is None:
        raise Invalid(f"{option} {text!r} has no time zone: add Z or +08:00")
    return value


def _first_error(exc: ValidationError) -> Invalid:
    e = exc.errors()[0]
    where = ".".join(str(p) for p in e["loc"])
    return Invalid(f"{where + ': ' if where else ''}{e['msg']}")


def _progress_bar():
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def _wait_for_enrolment(sessions, tenant, campaign_id: str, job_id: str):
    """Run the queued enrolment here, a batch per transaction, with a progress bar; if a
    worker has it, follow its progress until it ends. Returns the job as it ended."""
    from haina.campaigns import service
    from haina.core.db import transaction
    with _progress_bar() as progress:
        task = progress.add_task("enrolling", total=None)
        while True:
            service.run_job(sessions, tenant.id, job_id,
                            on_batch=lambda done, total: progress.update(
                                task, completed=done, total=total))
            with transaction(sessions) as session:
                job = service.get_enrolment(session, tenant, campaign_id, job_id)
            progress.update(task, completed=job.done, total=job.audience or None)
            if job.status in ("succeeded", "failed", "canceled") or job.message.startswith(
                    "waiting"):
                return job
            time.sleep(1.0)  # the worker is running it: look again


def _enrolment_line(job) -> str:
    return (f"{job.kind} {job.id}: {job.status}, {job.done} of {job.audience} members "
            f"({job.progress} %); {job.message}")


@app.command()
def create(tenant: Annotated[str, typer.Option(help="merchant slug")],
           name: Annotated[str, typer.Option(help="the campaign's name")],
           ends_at: Annotated[str, typer.Option(help="its end (ISO 8601 with a zone)")],
           segment: Annotated[str | None, typer.Option(help="a saved segment (seg_…)")] = None,
           members: Annotated[str | None, typer.Option(help="member ids, comma-separated")] = None,
           off: Annotated[str | None, typer.Option(help="a fixed amount off, e.g. 20.00")] = None,
           percent: Annotated[str | None, typer.Option(help="a percentage off, e.g. 10")] = None,
           max_discount: Annotated[str | None, typer.Option(help="percent: at most this")] = None,
           min_spend: Annotated[str | None, typer.Option(help="goods worth at least")] = None,
           holdout: Annotated[int, typer.Option(help="holdout %, 0-90")] = 10,
           starts_at: Annotated[str | None, typer.Option(help="its start (default now)")] = None,
           budget: Annotated[str | None, typer.Option(help="the coupons' worst-case cost cap")] = None,
           channel: Annotated[str, typer.Option(help="sms or email")] = "sms",
           seed: Annotated[str | None, typer.Option(help="the holdout's draw")] = None,
           reevaluate_hours: Annotated[int, typer.Option(
               help="add new segment members every N hours while it runs (0: never)")] = 24,
           wait: Annotated[bool, typer.Option(
               "--wait", help="enrol a large audience here (a progress bar) rather than "
                              "leave it to the worker")] = False) -> None:
    """Create a campaign (launched at once when its start has come)."""
    from haina.campaigns import service
    from haina.campaigns.schemas import CampaignCreate
    from haina.core.db import transaction
    from haina.platform import service as platform
    if (off is None) == (percent is None):
        raise Invalid("give either --off AMOUNT or --percent P")
    sessions = _sessions()
    with transaction(sessions) as session:
        t = platform.tenant_for_slug(session, tenant)

        def money(value: str | None):
            return {"amount": value, "currency": t.currency} if value is not None else None

        discount = ({"type": "fixed", "amount": money(off)} if off is not None
                    else {"type": "percent", "percent": percent})
        body = {"name": name, "segment_id": segment, "channel": channel,
                "member_ids": [m.strip() for m in members.split(",") if m.strip()]
                if members else None,
                "coupon": {"discount": discount, "min_spend": money(min_spend),
                           "max_discount": money(max_discount)},
                "holdout_percent": holdout, "ends_at": _when("--ends-at", ends_at),
                "starts_at": _when("--starts-at", starts_at) if starts_at else None,
                "budget": money(budget), "seed": seed, "reevaluate_hours": reevaluate_hours}
        try:
            data = CampaignCreate.model_validate(body)
        except ValidationError as exc:
            raise _first_error(exc) from None
        c = service.create_campaign(session, t, data)
    if wait and c.enrolment is not None and c.enrolment.status == "queued":
        _wait_for_enrolment(sessions, t, c.id, c.enrolment.id)
        with transaction(sessions) as session:
            c = service.get_campaign(session, t, c.id)
    out.print(f"created {c.id} ({c.status}): coupon {c.coupon_code}, {c.treated} treated, "
              f"{c.holdout} held out of {c.audience} consenting ({c.candidates} candidates)")
    if c.enrolment is not None and c.enrolment.status != "succeeded":
        out.print(_enrolment_line(c.enrolment)
                  + ("" if wait else f"; `haina worker` enrols them, or run `haina campaigns "
                                     f"enrol {c.id} --tenant {tenant}`"))


@app.command("list")
def list_(tenant: Annotated[str, typer.Option(help="merchant slug")],
          status: Annotated[str | None, typer.Option(help="scheduled, running, paused, "
                                                          "ended")] = None,
          limit: Annotated[int, typer.Option(min=1, max=200)] = 50) -> None:
    """The merchant's campaigns, newest first."""
    from haina.campaigns import service
    from haina.core.db import transaction
    from haina.platform import service as platform
    if status is not None and status not in ("scheduled", "running", "paused", "ended"):
        raise Invalid(f"--status {status!r}: one of scheduled, running, paused, ended")
    with transaction(_sessions()) as session:
        page = service.list_campaigns(session, platform.tenant_for_slug(session, tenant),
                                      status=status, limit=limit)
    table = Table()
    table.add_column("id", no_wrap=True, min_width=30)  # whole, whatever the terminal's width
    table.add_column("name", overflow="fold")
    table.add_column("status", no_wrap=True)
    for name in ("treated", "holdout", "ends"):
        table.add_column(name, overflow="fold")
    for c in page.data:
        table.add_row(c.id, c.name, c.status, str(c.treated), str(c.holdout),
                      c.ends_at.date().isoformat())
    out.print(table)


@app.command()
def show(campaign_id: Annotated[str, typer.Argument(help="cmp_…")],
         tenant: Annotated[str, typer.Option(help="merchant slug")]) -> None:
    """One campaign as JSON."""
    from haina.campaigns import service
    from haina.core.db import transaction
    from haina.platform import service as platform
    with transaction(_sessions()) as session:
        c = service.get_campaign(session, platform.tenant_for_slug(session, tenant), campaign_id)
    out.print_json(c.model_dump_json())


@app.command()
def enrol(campaign_id: Annotated[str, typer.Argument(help="cmp_…")],
          tenant: Annotated[str, typer.Option(help="merchant slug")],
          reevaluate: Annotated[bool, typer.Option(
              "--reevaluate", help="look for members who joined the segment since, now")] = False
          ) -> None:
    """Run a campaign's queued enrolment here (a progress bar), or follow the worker's; with
    --reevaluate, queue a re-evaluation first."""
    from haina.campaigns import service
    from haina.core.db import transaction
    from haina.platform import service as platform
    sessions = _sessions()
    with transaction(sessions) as session:
        t = platform.tenant_for_slug(session, tenant)
        job = (service.reevaluate_campaign(session, t, campaign_id) if reevaluate
               else service.get_campaign(session, t, campaign_id).enrolment)
    if job is None:
        raise Invalid(f"campaign {campaign_id} has not launched: nothing to enrol")
    if job.status in ("queued", "running"):
        job = _wait_for_enrolment(sessions, t, campaign_id, job.id)
    out.print(_enrolment_line(job))
    if job.status == "failed":
        raise typer.Exit(1)


@app.command()
def results(campaign_id: Annotated[str, typer.Argument(help="cmp_…")],
            tenant: Annotated[str, typer.Option(help="merchant slug")],
            as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
            plot: Annotated[Path | None, typer.Option(help="write the lift chart (.svg or "
                                                           ".png)")] = None) -> None:
    """Treated against holdout, and the lift with its 95 % interval."""
    from haina.campaigns import service
    from haina.core.db import transaction
    from haina.platform import service as platform
    fmt = None
    if plot is not None:
        fmt = plot.suffix.lstrip(".").lower()
        if fmt not in ("svg", "png"):
            raise Invalid(f"--plot {str(plot)!r}: the file must end in .svg or .png")
    with transaction(_sessions()) as session:
        t = platform.tenant_for_slug(session, tenant)
        r = service.campaign_results(session, t, campaign_id)
        chart = service.lift_plot(session, t, campaign_id, fmt) if fmt else None
    if plot is not None and chart is not None:
        plot.write_bytes(chart)
    if as_json:
        out.print_json(json.dumps(r.model_dump(mode="json")))
        return

    def money(m) -> str:
        return f"{m.amount} {m.currency}"

    def interval(i) -> str:
        if i.low is None:
            return f"{money(i.estimate)} (too few members for an interval)"
        return f"{money(i.estimate)} [95 %: {i.low.amount} to {i.high.amount}]"

    table = Table("", "treated", "holdout")
    table.add_row("members", str(r.treated.members), str(r.holdout.members))
    table.add_row("buyers", str(r.treated.buyers), str(r.holdout.buyers))
    table.add_row("revenue per member", money(r.treated.revenue_per_member),
                  money(r.holdout.revenue_per_member))
    out.print(table)
    rate = f"{r.redemption_rate:.1%}" if r.redemption_rate is not None else "-"
    out.print(f"redeemed: {r.redeemed} ({rate}); discount cost: {money(r.discount_cost)}")
    out.print(f"incremental revenue: {interval(r.incremental_revenue)}")
    out.print(f"net lift: {interval(r.net_lift)}")
    if plot is not None:
        out.print(f"wrote {plot}")
