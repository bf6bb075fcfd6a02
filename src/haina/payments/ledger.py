"""The double-entry ledger: every money movement posts one balanced journal entry.

Accounts (per merchant and currency):

* ``platform_cash`` (asset, debit-normal): money the platform holds, received from buyers.
* ``merchant_payable`` (liability, credit-normal): what the platform owes the merchant.
* ``platform_fees`` (revenue, credit-normal): the platform's fee on each capture.

capture A with fee F    Dr platform_cash A          Cr merchant_payable A−F, Cr platform_fees F
refund R (fee share f)  Dr merchant_payable R−f, Dr platform_fees f    Cr platform_cash R
payout P                Dr merchant_payable P       Cr platform_cash P

Balances are sums over lines, never stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import utcnow
from haina.core.ids import new_id
from haina.core.money import Money
from haina.core.pagination import Page, paginate
from haina.payments.models import JournalEntry, JournalLine
from haina.payments.schemas import BalanceOut, JournalEntryOut, JournalLineOut

CASH, PAYABLE, FEES = "platform_cash", "merchant_payable", "platform_fees"
NORMAL_SIDE = {CASH: "debit", PAYABLE: "credit", FEES: "credit"}


class Unbalanced(AssertionError):
    pass


Line = tuple[str, int, int]  # (account, debit, credit) in minor units


def _rows(tenant: Tenant, kind: str, ref_id: str, currency: str, lines: Sequence[Line],
          memo: str | None, at: dt.datetime) -> tuple[dict, list[dict]]:
    lines = [ln for ln in lines if ln[1] or ln[2]]
    debits, credits = sum(ln[1] for ln in lines), sum(ln[2] for ln in lines)
    if debits != credits or not lines:
        raise Unbalanced(f"journal entry {kind} {ref_id}: debits {debits} ≠ credits {credits}")
    entry_id = new_id("journal_entry", int(at.timestamp() * 1000))
    entry = {"id": entry_id, "tenant_id": tenant.id, "kind": kind, "ref_id": ref_id,
             "currency": currency, "memo": memo, "created_at": at}
    return entry, [{"id": new_id("journal_line"), "tenant_id": tenant.id, "entry_id": entry_id,
                    "account": account, "debit_minor": debit, "credit_minor": credit,
                    "currency": currency} for account, debit, credit in lines]


def post(session: Session, tenant: Tenant, kind: str, ref_id: str, currency: str,
         lines: Sequence[Line], memo: str | None = None) -> str:
    """Post an entry of (account, debit, credit) lines; refuses one that does not balance."""
    entry, rows = _rows(tenant, kind, ref_id, currency, lines, memo, utcnow())
    conn = session.connection()
    conn.execute(insert(JournalEntry.__table__), entry)
    conn.execute(insert(JournalLine.__table__), rows)
    return entry["id"]


def post_many(session: Session, tenant: Tenant,
              entries: Sequence[tuple[str, str, str, Sequence[Line], str | None, dt.datetime]]) -> int:
    """Post many dated entries (kind, ref_id, currency, lines, memo, at) in two statements —
    an import of history. Each entry must balance, as in :func:`post`."""
    heads, lines = [], []
    for kind, ref_id, currency, entry_lines, memo, at in entries:
        head, rows = _rows(tenant, kind, ref_id, currency, entry_lines, memo, at)
        heads.append(head)
        lines += rows
    if heads:
        conn = session.connection()
        conn.execute(insert(JournalEntry.__table__), heads)
        conn.execute(insert(JournalLine.__table__), lines)
    return len(heads)


def balances(session: Session, tenant: Tenant) -> list[BalanceOut]:
    rows = session.execute(
        select(JournalLine.account, JournalLine.currency, func.sum(JournalLine.debit_minor),
               func.sum(JournalLine.credit_minor))
        .where(JournalLine.tenant_id == tenant.id)
        .group_by(JournalLine.account, JournalLine.currency)
        .order_by(JournalLine.account, JournalLine.currency)).all()
    out = []
    for account, currency, debits, credits in rows:
        debits, credits = int(debits or 0), int(credits or 0)
        side = NORMAL_SIDE.get(account, "debit")
        amount = debits - credits if side == "debit" else credits - debits
        out.append(BalanceOut(account=account, currency=currency, normal_side=side,
                              balance=Money.of(amount, currency), debits=Money.of(debits, currency),
                              credits=Money.of(credits, currency)))
    return out


def balance_minor(session: Session, tenant: Tenant, account: str, currency: str) -> int:
    debits, credits = session.execute(
        select(func.coalesce(func.sum(JournalLine.debit_minor), 0),
               func.coalesce(func.sum(JournalLine.credit_minor), 0))
        .where(JournalLine.tenant_id == tenant.id, JournalLine.account == account,
               JournalLine.currency == currency)).one()
    return int(debits) - int(credits) if NORMAL_SIDE.get(account) == "debit" else int(credits) - int(debits)


def list_entries(session: Session, tenant: Tenant, *, ref_id: str | None = None,
                 kind: str | None = None, limit: int = 50,
                 cursor: str | None = None) -> Page[JournalEntryOut]:
    stmt = select(JournalEntry).where(JournalEntry.tenant_id == tenant.id)
    if ref_id:
        stmt = stmt.where(JournalEntry.ref_id == ref_id)
    if kind:
        stmt = stmt.where(JournalEntry.kind == kind)
    page = paginate(session, stmt, JournalEntry.id, limit=limit, cursor=cursor, convert=lambda e: e)
    ids = [e.id for e in page.data]
    lines: dict[str, list[JournalLineOut]] = {i: [] for i in ids}
    if ids:
        for ln in session.scalars(select(JournalLine).where(JournalLine.tenant_id == tenant.id,
                                                            JournalLine.entry_id.in_(ids))
                                  .order_by(JournalLine.id)):
            lines[ln.entry_id].append(JournalLineOut(
                account=ln.account, debit=Money.of(ln.debit_minor, ln.currency),
                credit=Money.of(ln.credit_minor, ln.currency)))
    data = [JournalEntryOut(id=e.id, kind=e.kind, ref_id=e.ref_id, currency=e.currency,
                            memo=e.memo, lines=lines[e.id], created_at=e.created_at)
            for e in page.data]
    return Page[JournalEntryOut](data=data, has_more=page.has_more, next_cursor=page.next_cursor)
