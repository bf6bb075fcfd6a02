"""The partition test mode of docs/scaling.md, shared by every migration that creates tenant
tables: with ``HAINA_PARTITION_BY_TENANT=1`` on PostgreSQL each tenant table is rebuilt
hash-partitioned by ``tenant_id`` in 8 partitions. PostgreSQL allows that only when every unique
constraint contains ``tenant_id``, the rule Citus has for distributed tables, so the mode proves
the keys.

A migration that adds tenant tables creates them as usual, then calls
``partition_by_tenant([...new tables, parents before children])``; it does nothing outside the
mode. This is migration machinery, not live application code: the one import a migration makes
from the package."""

from __future__ import annotations

import os

from alembic import op

PARTITIONS = 8


def partition_mode() -> bool:
    return (os.environ.get("HAINA_PARTITION_BY_TENANT") == "1"
            and op.get_bind().dialect.name == "postgresql")


def partition_by_tenant(tables: list[str]) -> None:
    """Rebuild each of ``tables`` (parents before children) as it is — columns, defaults,
    constraints, indexes, foreign keys both ways, rows — hash-partitioned by tenant_id."""
    if not partition_mode():
        return
    conn = op.get_bind()
    for table in tables:
        oid = conn.exec_driver_sql(f"SELECT '{table}'::regclass::oid").scalar()
        own = conn.exec_driver_sql(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            f"WHERE conrelid = {oid} AND conparentid = 0 ORDER BY contype = 'f', conname").all()
        children = conn.exec_driver_sql(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            f"FROM pg_constraint WHERE confrelid = {oid} AND conrelid <> {oid} "
            "AND conparentid = 0").all()
        indexes = conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT EXISTS ("
            "SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", (table,)).scalars().all()
        op.execute(f'ALTER TABLE "{table}" RENAME TO "{table}__unpartitioned"')
        op.execute(f'CREATE TABLE "{table}" (LIKE "{table}__unpartitioned" INCLUDING DEFAULTS) '
                   "PARTITION BY HASH (tenant_id)")
        for i in range(PARTITIONS):
            op.execute(f'CREATE TABLE "{table}_p{i}" PARTITION OF "{table}" '
                       f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
        op.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}__unpartitioned"')
        op.execute(f'DROP TABLE "{table}__unpartitioned" CASCADE')
        for name, _, definition in own:
            op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        for definition in indexes:
            op.execute(definition)
        for child, name, definition in children:
            op.execute(f'ALTER TABLE {child} ADD CONSTRAINT "{name}" {definition}')
