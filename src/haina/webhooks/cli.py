"""``haina webhooks``: replay messages, list what failed, deliver once.

::

    haina webhooks replay --tenant SLUG --delivery msg_…
    haina webhooks replay --tenant SLUG --endpoint we_… --since 2026-01-01T00:00:00Z [--only-failed]
    haina webhooks failed --tenant SLUG [--limit 50]
    haina webhooks deliver [--once]

Bad input (an unknown merchant, endpoint or delivery, a time without a zone) is one line on
stderr and exit status 1 (``haina.cli.main`` prints the problem's detail).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from haina.core.errors import Invalid

app = typer.Typer(help="Webhooks: replay messages, list failures.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
out = Console(soft_wrap=True)


def _sessions():
    from haina.core.config import get_settings
    from haina.core.db import make_engine, make_sessionmaker
    from haina.core.schema import ensure_current
    engine = make_engine(get_settings().database_url)
    ensure_current(engine)
    return make_sessionmaker(engine)


def _when(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"--since {text!r} is not an ISO 8601 time such as "
                      "2026-01-01T00:00:00Z") from None
    if value.tzinfo is None:
        raise Invalid(f"--since {text!r} has no time zone: add Z or +08:00")
    return value


@app.command()
def replay(tenant: Annotated[str, typer.Option(help="merchant slug")],
           delivery: Annotated[str | None, typer.Option(help="one message (msg_…)")] = None,
           endpoint: Annotated[str | None, typer.Option(help="an endpoint (we_…)")] = None,
           since: Annotated[str | None, typer.Option(help="with --endpoint: events since "
                                                          "this ISO 8601 time")] = None,
           only_failed: Annotated[bool, typer.Option(help="with --endpoint: failed "
                                                          "messages only")] = False) -> None:
    """Send one message again (--delivery), or an endpoint's events since a time."""
    from haina.core.db import transaction
    from haina.platform import service as platform
    from haina.webhooks import service
    if (delivery is None) == (endpoint is None):
        raise Invalid("give either --delivery msg_… or --endpoint we_… --since TIME")
    if endpoint is not None and since is None:
        raise Invalid("--endpoint needs --since TIME (ISO 8601, e.g. 2026-01-01T00:00:00Z)")
    when = _when(since) if since is not None else None
    with transaction(_sessions()) as session:
        t = platform.tenant_for_slug(session, tenant)
        if delivery is not None:
            d = service.replay_delivery(session, t, delivery)
            out.print(f"queued {d.id} (event {d.event_id}) to be sent again")
        else:
            assert endpoint is not None and when is not None
            r = service.replay_endpoint(session, t, endpoint, when, only_failed)
            out.print(f"queued {r.queued} messages for {endpoint}")


@app.command()
def failed(tenant: Annotated[str, typer.Option(help="merchant slug")],
           limit: Annotated[int, typer.Option(min=1, max=200)] = 50) -> None:
    """List a merchant's failed (dead-lettered) messages, newest first."""
    from haina.core.db import transaction
    from haina.platform import service as platform
    from haina.webhooks import service
    with transaction(_sessions()) as session:
        page = service.list_deliveries(session, platform.tenant_for_slug(session, tenant),
                                       status="failed", limit=limit)
    table = Table("id", "endpoint", "event", "type", "attempts", "last error",
                  title=f"failed webhook messages of {tenant}")
    for d in page.data:
        table.add_row(d.id, d.endpoint_id, d.event_id, d.event_type, str(d.attempts),
                      d.last_error or "")
    out.print(table)


@app.command()
def deliver() -> None:
    """Deliver what is pending or due now, then exit (the worker does this continuously)."""
    import asyncio

    from haina.webhooks.delivery import Dispatcher
    n = asyncio.run(Dispatcher(_sessions()).drain())
    out.print(f"made {n} requests")
