"""A person in analytics: their scores and imported transactions, exported or erased (a data
request, ``haina.privacy``). Runs keep only aggregates (fitted parameters, cohorts, plot data)
and stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import rowcount
from haina.core.personal import export_rows

from .models import ImportedTransaction, MemberScore


def export_member_analytics(session: Session, tenant: Tenant,
                            keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Scores and imported rows filed under ``keys``: the person's member ids and the
    identity values an imported log may use as its customer id."""
    return {
        "analytics_member_scores": export_rows(session, MemberScore.__table__, tenant.id,
                                               "member_id", keys),
        "analytics_transactions": export_rows(session, ImportedTransaction.__table__, tenant.id,
                                              "customer_id", keys),
    }


def erase_member_analytics(session: Session, tenant: Tenant, keys: Sequence[str]) -> int:
    """Drop the person's scores and imported rows (the next refresh scores them no more:
    members erased or refusing ``data_analysis`` are left out). Returns the rows deleted."""
    ids = list(keys)
    return (rowcount(session.execute(delete(MemberScore).where(
        MemberScore.tenant_id == tenant.id, MemberScore.member_id.in_(ids))))
        + rowcount(session.execute(delete(ImportedTransaction).where(
            ImportedTransaction.tenant_id == tenant.id,
            ImportedTransaction.customer_id.in_(ids)))))
