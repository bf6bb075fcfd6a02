"""Reading declarations for a merchant's screens: a page of them, an order's, and the
three-document check laid out rule by rule. Read only; ID numbers stay masked."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.pagination import Page, paginate
from haina.crossborder import customs
from haina.crossborder.declarations import _out
from haina.crossborder.models import Declaration
from haina.crossborder.schemas import DeclarationOut, DocumentCheckOut

DECLARATION_STATUSES = ("ready", "accepted", "released", "rejected")


def list_declarations(session: Session, tenant: Tenant, *, status: str | None = None,
                      limit: int = 50, cursor: str | None = None) -> Page[DeclarationOut]:
    """The merchant's declarations, newest first, optionally in one state."""
    stmt = select(Declaration).where(Declaration.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(Declaration.status == status)
    return paginate(session, stmt, Declaration.id, limit=limit, cursor=cursor, convert=_out,
                    kind="declaration")


def declaration_of_order(session: Session, tenant: Tenant, order_id: str) -> DeclarationOut | None:
    """The order's declaration, if it has been declared (one per order)."""
    row = session.scalar(select(Declaration).where(Declaration.tenant_id == tenant.id,
                                                   Declaration.order_id == order_id))
    return _out(row) if row is not None else None


def document_check(declaration: DeclarationOut) -> list[DocumentCheckOut]:
    """Every rule of the three-document check on the declaration's messages, each marked
    agreeing or not (``customs.three_document_check`` decides; the order's values are
    CEB311's, the documents' CEB411's and CEB511's)."""
    messages = declaration.messages
    heads = {"order": customs.head_of(messages["CEB311"]),
             "payment": customs.head_of(messages["CEB411"]),
             "waybill": customs.head_of(messages["CEB511"])}
    disagree = {d.field for d in customs.three_document_check(
        messages["CEB311"], messages["CEB411"], messages["CEB511"])}
    return [DocumentCheckOut(document=document, field=name,
                             order_field=order_name,
                             order_value=heads["order"].get(order_name, ""),
                             value=heads[document].get(name, ""),
                             agrees=f"{document}.{name}" not in disagree)
            for document, name, order_name in customs.THREE_DOCUMENT_RULES]
