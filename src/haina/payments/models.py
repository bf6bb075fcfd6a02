from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, Minor, UTCDateTime, tenant_fk


class PaymentIntent(Base):
    __tablename__ = "payment_intents"
    __table_args__ = (
        Index("ix_payment_intents_tenant_order", "tenant_id", "order_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(40))
    amount_minor: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    # requires_capture | succeeded | failed | canceled
    status: Mapped[str] = mapped_column(String(20))
    capture_method: Mapped[str] = mapped_column(String(10))  # automatic | manual
    captured_minor: Mapped[int] = mapped_column(Minor, default=0)
    refunded_minor: Mapped[int] = mapped_column(Minor, default=0)
    fee_minor: Mapped[int] = mapped_column(Minor, default=0)  # platform fee on the capture
    provider: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    payment_method: Mapped[dict] = mapped_column(JSONType)  # type, brand, last4 — never the number
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_tenant_order", "tenant_id", "order_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("payment_intent_id", "payment_intents"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    payment_intent_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(40))
    amount_minor: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # succeeded | failed
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    amount_minor: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class JournalEntry(Base):
    """One money movement: its lines' debits equal their credits."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        Index("ix_journal_entries_tenant_ref", "tenant_id", "ref_id"),
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # capture | refund | payout
    ref_id: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    memo: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class JournalLine(Base):
    __tablename__ = "journal_lines"
    __table_args__ = (
        Index("ix_journal_lines_tenant_account", "tenant_id", "account", "currency"),
        Index("ix_journal_lines_tenant_entry", "tenant_id", "entry_id"),
        CheckConstraint("debit_minor >= 0 AND credit_minor >= 0", name="non_negative"),
        CheckConstraint("(debit_minor = 0) OR (credit_minor = 0)", name="one_side"),
        PrimaryKeyConstraint("tenant_id", "id"),
        tenant_fk("entry_id", "journal_entries"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    entry_id: Mapped[str] = mapped_column(String(40))
    account: Mapped[str] = mapped_column(String(40))
    debit_minor: Mapped[int] = mapped_column(Minor, default=0)
    credit_minor: Mapped[int] = mapped_column(Minor, default=0)
    currency: Mapped[str] = mapped_column(String(3))
