from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from haina.core.db import Base, JSONType, UTCDateTime


class Cart(Base):
    __tablename__ = "carts"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | ordered
    order_id: Mapped[str | None] = mapped_column(String(40))
    # [{"sku": …, "quantity": …}] — priced afresh each time the cart is read
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
