"""``haina privacy``: a member's data exported or erased from the terminal, retention.

::

    haina privacy export --tenant SLUG --member mem_… [--out FILE.zip]
    haina privacy erase --tenant SLUG --member mem_… --yes
    haina privacy retention --tenant SLUG [--kind abandoned_carts --days 30]

Bad input (an unknown merchant or member, a period outside its bounds) is one line on stderr
and exit status 1 (``haina.cli.main`` prints the problem's detail).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from haina.core.errors import Invalid

app = typer.Typer(help="Personal information: export or erase a member's data, retention.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
out = Console(soft_wrap=True, stderr=False)


def _sessions():
    from haina.core.config import get_settings
    from haina.core.db import make_engine, make_sessionmaker
    from haina.core.schema import ensure_current
    engine = make_engine(get_settings().database_url)
    ensure_current(engine)
    return make_sessionmaker(engine)


def _run(tenant: str, member: str, kind: str):
    from haina.core.db import transaction
    from haina.platform import service as platform
    from haina.privacy import service
    with out.status(f"{kind} of {member} at {tenant} …"):
        with transaction(_sessions()) as session:
            t = platform.tenant_for_slug(session, tenant)
            made, new = service.request_data(session, t, member, kind)
            content = None
            if kind == "export":
                content, _ = service.download_archive(session, t, made.id)
    return made, new, content


@app.command()
def export(tenant: Annotated[str, typer.Option(help="merchant slug")],
           member: Annotated[str, typer.Option(help="the member (mem_…)")],
           out_file: Annotated[Path | None, typer.Option(
               "--out", help="where to write the zip (default: ./<member>-<request>.zip)")] = None,
           ) -> None:
    """Export everything held about a member (and the members merged into it) as a zip."""
    made, _, content = _run(tenant, member, "export")
    assert content is not None
    path = out_file or Path(f"{made.member_id}-{made.id}.zip")
    if path.exists() and path.is_dir():
        raise Invalid(f"--out {path} is a directory; name a file")
    path.write_bytes(content)
    rows = sum(made.result.values())
    out.print(f"{made.id}: {rows} rows of {len(made.result)} tables → {path} "
              f"({len(content):,} bytes); apps told: {len(made.acknowledgements)}")


@app.command()
def erase(tenant: Annotated[str, typer.Option(help="merchant slug")],
          member: Annotated[str, typer.Option(help="the member (mem_…)")],
          yes: Annotated[bool, typer.Option("--yes", help="confirm: this cannot be undone")]
          = False) -> None:
    """Erase a member's personal data everywhere (irreversible; the books stay)."""
    if not yes:
        raise Invalid("erasure cannot be undone: add --yes to confirm")
    made, new, _ = _run(tenant, member, "erase")
    done = ", ".join(f"{k} {v}" for k, v in made.result.items() if v)
    if not new:
        out.print(f"{made.id}: already erased on {made.created_at:%Y-%m-%d} ({done})")
        return
    out.print(f"{made.id}: erased {', '.join(made.member_ids)} ({done}); apps to confirm "
              f"by {made.due_at:%Y-%m-%d}: {', '.join(made.apps_pending) or 'none'}")


@app.command()
def retention(tenant: Annotated[str, typer.Option(help="merchant slug")],
              kind: Annotated[str | None, typer.Option(help="a kind to change")] = None,
              days: Annotated[int | None, typer.Option(help="its new period")] = None) -> None:
    """Show a merchant's retention periods, or change one (--kind K --days N)."""
    from haina.core.db import transaction
    from haina.platform import service as platform
    from haina.privacy import service
    if (kind is None) != (days is None):
        raise Invalid("give both --kind and --days, or neither")
    with transaction(_sessions()) as session:
        t = platform.tenant_for_slug(session, tenant)
        if kind is not None and days is not None:
            if kind not in service.RETENTION_ACTIONS:
                raise Invalid(f"unknown kind {kind!r}; one of "
                              + ", ".join(service.RETENTION_ACTIONS))
            kinds = service.set_retention(session, t, {kind: days})
        else:
            kinds = service.retention(session, t)
    table = Table("kind", "days", "default", "bounds", "after the period",
                  title=f"retention at {tenant}")
    for k in kinds:
        table.add_row(k.kind, str(k.days), str(k.default_days),
                      f"{k.minimum_days}–{k.maximum_days}", k.action)
    out.print(table)
