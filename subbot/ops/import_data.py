"""Import a critical-data export (:mod:`subbot.ops.export_data`) idempotently: upserts by natural keys.

Natural keys: plans by code, plan chats by (plan, chat), users by id, orders by id, payments by
(provider, provider_payment_id), refunds by (provider, provider_refund_id) with their payment found by
the payment's provider id, subscriptions by (user, plan, starts_at) (a new one keeps its original id when
that id is free), memberships by (user, chat). The file is authoritative: a row that differs is updated
to the file's values. Every record is validated (types, lengths, required fields, the rows it points
to); a bad record is reported and skipped, never fatal. Everything happens in ONE transaction;
``dry_run`` rolls it back, so the report says exactly what a real run would do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Column, String, Table, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.ops.data.codec import CodecError, column_kind, decode_value
from subbot.ops.data.common import DataToolError, Progress, reset_sequences
from subbot.ops.export_data import FORMAT, SECTIONS
from subbot.store.db import Database
from subbot.store.migrate import SchemaState, schema_state, upgrade
from subbot.store.models import Membership, Order, Payment, PlanChat, PlanRow, RefundRow, Subscription, User

SHOWN_INVALID = 100


class InvalidRecord(ValueError):
    """Why one record of the file cannot be imported."""


@dataclass
class TableCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0


@dataclass
class ImportReport:
    dry_run: bool
    schema_revision: str | None = None
    tables: dict[str, TableCounts] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)  # the first SHOWN_INVALID reasons

    @property
    def changed(self) -> int:
        return sum(t.created + t.updated for t in self.tables.values())

    @property
    def invalid_total(self) -> int:
        return sum(t.invalid for t in self.tables.values())


class _Rollback(Exception):
    pass


@dataclass(frozen=True)
class _Spec:
    model: Any
    key: tuple[str, ...]
    keep_id: bool = False  # insert with the file's id when it is free
    drop: tuple[str, ...] = ()  # file fields never written (ids resolved otherwise)

    @property
    def table(self) -> Table:
        table: Table = self.model.__table__
        return table


SPECS: dict[str, _Spec] = {
    "plans": _Spec(PlanRow, ("code",)),
    "plan_chats": _Spec(PlanChat, ("plan_code", "chat_id")),
    "users": _Spec(User, ("id",)),
    "orders": _Spec(Order, ("id",)),
    "payments": _Spec(Payment, ("provider", "provider_payment_id"), keep_id=True),
    "refunds": _Spec(RefundRow, ("provider", "provider_refund_id"), drop=("id",)),
    "subscriptions": _Spec(Subscription, ("user_id", "plan_code", "starts_at"), keep_id=True),
    "memberships": _Spec(Membership, ("user_id", "chat_id"), drop=("id",)),
}
# (column, table, column it refers to) checked for every record: the row must exist in this database
_REFS: dict[str, tuple[tuple[str, Any], ...]] = {
    "plan_chats": (("plan_code", PlanRow.code),),
    "orders": (("user_id", User.id), ("plan_code", PlanRow.code)),
    "payments": (("user_id", User.id), ("order_id", Order.id)),
    "subscriptions": (("user_id", User.id), ("plan_code", PlanRow.code), ("order_id", Order.id)),
    "memberships": (("user_id", User.id),),
}


def _validate(spec: _Spec, record: Any) -> dict[str, Any]:
    """The record as column values (decoded, checked); raises InvalidRecord."""
    if not isinstance(record, dict):
        raise InvalidRecord("not a JSON object")
    values: dict[str, Any] = {}
    auto = spec.table.autoincrement_column
    for column in spec.table.columns:
        name = column.name
        if name in spec.drop:
            continue
        if name not in record:
            if column is auto or column.nullable or column.default is not None or column.server_default:
                continue
            raise InvalidRecord(f"{name} is missing")
        try:
            value = decode_value(column_kind(column), record[name])
        except CodecError as exc:
            raise InvalidRecord(f"{name}: {exc}") from None
        if value is None and not column.nullable and column is not auto:
            raise InvalidRecord(f"{name} must not be null")
        _check_length(column, value)
        values[name] = value
    return values


def _check_length(column: Column[Any], value: Any) -> None:
    length = getattr(column.type, "length", None)
    if isinstance(column.type, String) and length and isinstance(value, str) and len(value) > length:
        raise InvalidRecord(f"{column.name} is longer than {length} characters")


class _Importer:
    def __init__(self, session: AsyncSession, report: ImportReport) -> None:
        self.session = session
        self.report = report
        self._exists: set[tuple[str, Any]] = set()  # rows known to exist (never forgotten: no deletes)

    async def _ref_exists(self, target: Any, value: Any) -> bool:
        cache_key = (str(target), value)
        if cache_key not in self._exists:
            if await self.session.scalar(select(target).where(target == value).limit(1)) is None:
                return False
            self._exists.add(cache_key)
        return True

    def _invalid(self, name: str, index: int, why: str) -> None:
        self.report.tables[name].invalid += 1
        if len(self.report.invalid) < SHOWN_INVALID:
            self.report.invalid.append(f"{name}[{index}]: {why}")

    async def section(self, name: str, records: list[Any], progress: Progress | None) -> None:
        spec = SPECS[name]
        self.report.tables[name] = TableCounts()
        for index, record in enumerate(records):
            try:
                values = _validate(spec, record)
                if name == "refunds":
                    values["payment_id"] = await self._refund_payment(record)
                for column, target in _REFS.get(name, ()):
                    value = values.get(column)
                    if value is not None and not await self._ref_exists(target, value):
                        raise InvalidRecord(
                            f"{column} {value!r} does not exist (not in the file or this database)"
                        )
                await self._upsert(name, spec, values)
            except InvalidRecord as exc:
                self._invalid(name, index, str(exc))
            if progress and (index + 1) % 500 == 0:
                progress(f"import {name}", index + 1, len(records))
        if progress:
            progress(f"import {name}", len(records), len(records))

    async def _refund_payment(self, record: dict[str, Any]) -> int:
        provider, ppid = record.get("payment_provider"), record.get("payment_provider_payment_id")
        if not isinstance(provider, str) or not isinstance(ppid, str):
            raise InvalidRecord("payment_provider and payment_provider_payment_id are required")
        payment_id = await self.session.scalar(
            select(Payment.id).where(Payment.provider == provider, Payment.provider_payment_id == ppid)
        )
        if payment_id is None:
            raise InvalidRecord(f"its payment {provider} {ppid} does not exist")
        return int(payment_id)

    async def _upsert(self, name: str, spec: _Spec, values: dict[str, Any]) -> None:
        table = spec.table
        auto = table.autoincrement_column
        where = and_(*(table.c[k] == values[k] for k in spec.key))
        existing = (await self.session.execute(select(table).where(where))).mappings().first()
        counts = self.report.tables[name]
        if existing is None:
            row = dict(values)
            if auto is not None and auto.name in row:
                taken = await self.session.scalar(select(auto).where(auto == row[auto.name]))
                if not spec.keep_id or taken is not None:
                    del row[auto.name]
            await self.session.execute(table.insert().values(**row))
            counts.created += 1
            return
        changes = {
            k: v
            for k, v in values.items()
            if k not in spec.key and (auto is None or k != auto.name) and existing[k] != v
        }
        if not changes:
            counts.unchanged += 1
            return
        await self.session.execute(table.update().where(where).values(**changes))
        counts.updated += 1


def load_export(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise DataToolError(f"file {path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataToolError(f"{path} is not valid JSON ({exc}); nothing was imported") from None
    header = data.get("header") if isinstance(data, dict) else None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DataToolError(f"{path} is not a subbot critical-data export (see `subbot data export`)")
    result: dict[str, Any] = data
    return result


async def import_data(
    db: Database, path: Path, *, dry_run: bool = False, progress: Progress | None = None
) -> ImportReport:
    data = load_export(path)
    report = ImportReport(dry_run, data["header"].get("schema_revision"))
    state, revision = await schema_state(db)
    if state is SchemaState.EMPTY and not dry_run:
        await upgrade(db)
    elif state is SchemaState.EMPTY:
        raise DataToolError("the database has no schema yet; run without --dry-run (it is migrated first)")
    elif state is not SchemaState.CURRENT:
        raise DataToolError(f"the database schema is {state.value} ({revision}); run `subbot migrate` first")
    on_record: Callable[[str, int, int | None], None] | None = progress
    try:
        async with db.write() as session:
            importer = _Importer(session, report)
            for name in SECTIONS:
                records = data.get(name, [])
                if not isinstance(records, list):
                    raise DataToolError(f"{path}: {name} must be a list")
                await importer.section(name, records, on_record)
            await reset_sequences(session, [SPECS[n].table for n in SECTIONS])
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    return report
