"""``haina crossborder``: the composite tax and the ID-number check from the terminal.

::

    haina crossborder check-id ID          # "valid", or exit 1 with the reason
    haina crossborder tax --amount 1000 --vat-rate 0.13 --consumption-rate 0.15 [--json]
    haina crossborder reseal               # re-encrypt ID numbers under the newest key
    haina crossborder brands queue         # platform staff: files awaiting review
    haina crossborder brands review SLUG BRAND_ID approve|reject|revoke --reason … --by …
    haina crossborder reviewers add APP_ID --by … --evidence …   # delegate reviews
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from haina.crossborder.identity import id_number_problem
from haina.crossborder.tax import DEFAULT_VAT_RATE, composite_tax, tax_summary

app = typer.Typer(help="Cross-border import: composite tax, buyers' ID numbers, brands' "
                       "qualification files.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
brands_app = typer.Typer(help="Foreign brands' qualification files (platform staff).",
                         no_args_is_help=True)
reviewers_app = typer.Typer(help="Apps the platform delegates qualification reviews to.",
                            no_args_is_help=True)
app.add_typer(brands_app, name="brands")
app.add_typer(reviewers_app, name="reviewers")


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} must be a decimal number, not {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number")
    return value


@app.command("check-id")
def check_id(id_number: Annotated[str, typer.Argument(help="an 18-character resident ID number")]) -> None:
    """Check a resident ID number (GB 11643-1999): length, region, birth date, check character."""
    problem = id_number_problem(id_number)
    if problem:
        raise ValueError(problem)
    print("valid")


@app.command("tax")
def tax(amount: Annotated[str, typer.Option(help="the dutiable price in CNY")],
        vat_rate: Annotated[str, typer.Option(help="the VAT rate")] = str(DEFAULT_VAT_RATE),
        consumption_rate: Annotated[str, typer.Option(help="the consumption-tax rate")] = "0",
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """The composite tax of cross-border retail import on one price."""
    price = _decimal(amount, "--amount")
    if price != price.quantize(Decimal("0.01")) or price < 0:
        raise ValueError("--amount is CNY of at least 0 with at most 2 decimals")
    line = composite_tax(price, _decimal(vat_rate, "--vat-rate"),
                         _decimal(consumption_rate, "--consumption-rate"))
    summary = tax_summary([line])
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    table = Table("tax", "CNY")
    for name in ("consumption_tax", "vat", "tariff", "total"):
        table.add_row(name.replace("_", " "), summary[name])
    Console().print(table)


@contextmanager
def _database() -> Iterator[Any]:
    """A sessionmaker on the configured database (refused if its schema is behind)."""
    from haina.core.config import get_settings
    from haina.core.db import make_engine, make_sessionmaker
    from haina.core.schema import ensure_current

    engine = make_engine(get_settings().database_url)
    try:
        ensure_current(engine)
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@brands_app.command("queue")
def brands_queue(status: Annotated[str, typer.Option(
        help="submitted, approved, rejected, revoked or expired")] = "submitted") -> None:
    """Every merchant's qualification files in a state (the review queue by default)."""
    from haina.core.db import transaction
    from haina.crossborder import service
    from haina.platform import service as platform
    with _database() as sessions, transaction(sessions) as session:
        rows = service.review_queue(session, status)
        slugs = {t.id: t.slug for t in platform.list_tenants(session)}
    # one line per file (ids whole, for `review`), oldest first
    for tenant_id, b in rows:
        print(f"{slugs.get(tenant_id, tenant_id)}\t{b.id}\t{b.status}\t{b.name} "
              f"({b.origin_country})\tagency: {b.agency_name}\tby {b.submitted_by}")
    if not rows:
        print(f"no files are {status}")


@brands_app.command("review")
def brands_review(tenant: Annotated[str, typer.Argument(help="the merchant's slug")],
                  brand_id: str,
                  decision: Annotated[str, typer.Argument(help="approve, reject or revoke")],
                  reason: Annotated[str, typer.Option(help="why (recorded)")],
                  by: Annotated[str, typer.Option(help="who decides (recorded)")]) -> None:
    """Approve, reject or revoke a merchant's qualification file as platform staff."""
    from haina.core.db import transaction
    from haina.crossborder import service
    from haina.platform import service as platform
    with _database() as sessions, transaction(sessions) as session:
        out = service.review_brand(session, platform.tenant_for_slug(session, tenant),
                                   brand_id, decision, reason, by)
    print(f"{out.name} ({out.id}) is {out.status}")


@reviewers_app.command("add")
def reviewers_add(app_id: str,
                  by: Annotated[str, typer.Option(help="who delegates (recorded)")],
                  evidence: Annotated[str, typer.Option(help="what the delegation rests on")]
                  ) -> None:
    """Delegate qualification reviews to a certified agency or customs-broker app."""
    from haina.core.db import transaction
    from haina.crossborder import service
    with _database() as sessions, transaction(sessions) as session:
        out = service.delegate_review(session, app_id, by, evidence)
    print(f"{out.app_id} reviews qualification files")


@reviewers_app.command("remove")
def reviewers_remove(app_id: str) -> None:
    """Withdraw an app's delegation (its later decisions are refused)."""
    from haina.core.db import transaction
    from haina.crossborder import service
    with _database() as sessions, transaction(sessions) as session:
        out = service.withdraw_delegation(session, app_id)
    print(f"{out.app_id} no longer reviews qualification files")


@reviewers_app.command("list")
def reviewers_list() -> None:
    """The apps reviews are delegated to, and who delegated them."""
    from haina.core.db import transaction
    from haina.crossborder import service
    with _database() as sessions, transaction(sessions) as session:
        rows = service.list_reviewers(session)
    table = Table("app", "delegated by", "evidence", "since", "withdrawn")
    for r in rows:
        table.add_row(r.app_id, r.delegated_by, r.evidence, r.delegated_at.isoformat(),
                      r.revoked_at.isoformat() if r.revoked_at else "")
    Console().print(table)


@app.command("reseal")
def reseal() -> None:
    """Re-encrypt buyers' ID numbers and declarations sealed under older keys with the first
    key of HAINA_CROSSBORDER_KEYS, so that the older keys can be dropped."""
    from haina.core.db import transaction
    from haina.crossborder import service

    with _database() as sessions:
        total = 0
        while True:
            with transaction(sessions) as session:
                done = service.reseal(session)
            total += done
            if not done:
                break
    print(f"resealed {total}")
