"""Export the data needed to rebuild access as ONE JSON file; import it with :mod:`subbot.ops.import_data`.

Holds plans (and their chats), users, the orders that payments or subscriptions refer to, payments,
refunds (with their payment's provider id), subscriptions and memberships, under a header with the schema
revision, the time and the counts. No secrets: tokens and keys live in the environment, never in these
tables; invite links, inbound event payloads, jobs and the audit log are left out.

Written in a streaming way (one row at a time) from one consistent snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, Table, func, or_, select

from subbot.ops.data.codec import column_kind, encode_value
from subbot.ops.data.common import Progress, fsync_replace, revision_of, snapshot, unique_path, utc_stamp
from subbot.store.db import Database
from subbot.store.models import Membership, Order, Payment, PlanChat, PlanRow, RefundRow, Subscription, User

FORMAT = "subbot-critical-export"
VERSION = 1
SECTIONS = ("plans", "plan_chats", "users", "orders", "payments", "refunds", "subscriptions", "memberships")


def default_export_path(directory: Path = Path("exports")) -> Path:
    return unique_path(directory, f"critical-{utc_stamp()}", ".json")


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _queries() -> dict[str, Select[Any]]:
    referenced = or_(
        Order.id.in_(select(Payment.order_id).where(Payment.order_id.is_not(None))),
        Order.id.in_(select(Subscription.order_id).where(Subscription.order_id.is_not(None))),
    )
    refunds = _table(RefundRow)
    return {
        "plans": select(_table(PlanRow)).order_by(PlanRow.code),
        "plan_chats": select(_table(PlanChat)).order_by(PlanChat.plan_code, PlanChat.chat_id),
        "users": select(_table(User)).order_by(User.id),
        "orders": select(_table(Order)).where(referenced).order_by(Order.id),
        "payments": select(_table(Payment)).order_by(Payment.id),
        "refunds": select(
            refunds,
            Payment.provider.label("payment_provider"),
            Payment.provider_payment_id.label("payment_provider_payment_id"),
        )
        .join(Payment, Payment.id == RefundRow.payment_id)
        .order_by(RefundRow.id),
        "subscriptions": select(_table(Subscription)).order_by(Subscription.id),
        "memberships": select(_table(Membership)).order_by(Membership.id),
    }


def _kinds(stmt: Select[Any]) -> list[tuple[str, str]]:
    return [(str(col.key), column_kind(col)) for col in stmt.selected_columns]


async def export_critical(db: Database, path: Path, *, progress: Progress | None = None) -> dict[str, Any]:
    """Write the export to ``path`` (atomically); returns its header."""
    queries = _queries()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    async with snapshot(db) as conn:
        counts: dict[str, int] = {}
        for name, stmt in queries.items():
            counts[name] = int(await conn.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        header = {
            "format": FORMAT,
            "version": VERSION,
            "schema_revision": await revision_of(conn),
            "exported_at": datetime.now(UTC).isoformat(),
            "backend": db.dialect,
            "counts": counts,
        }
        try:
            # a local file written between database fetches by a CLI tool: blocking writes are fine here
            with open(tmp, "w", encoding="utf-8") as out:  # noqa: ASYNC230
                out.write('{"header": ' + json.dumps(header, ensure_ascii=False))
                for name, stmt in queries.items():
                    out.write(f',\n"{name}": [')
                    columns = _kinds(stmt)
                    result = await conn.stream(stmt.execution_options(yield_per=1000))
                    done = 0
                    async for part in result.partitions(1000):
                        out.write(_rows(part, columns, first=done == 0))
                        done += len(part)
                        if progress:
                            progress(f"export {name}", done, counts[name])
                    out.write("\n]")
                out.write("\n}\n")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    fsync_replace(tmp, path)
    return header


def _rows(rows: Sequence[Any], columns: list[tuple[str, str]], *, first: bool) -> str:
    parts = []
    for row in rows:
        obj = {name: encode_value(kind, value) for (name, kind), value in zip(columns, row, strict=True)}
        parts.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
    return ("\n" if first else ",\n") + ",\n".join(parts)
