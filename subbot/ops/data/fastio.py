"""Bulk row transfer straight through the driver (aiosqlite, asyncpg), inside SQLAlchemy's transaction.

SQLAlchemy's per-row result and parameter processing dominates a dump or a reload of a million rows, so
the data tools read with a server-side cursor and write with ``executemany`` (SQLite) or ``COPY``
(PostgreSQL) on the same connection, converting values exactly as the models' types would:
datetimes are naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` text on SQLite and ``timestamptz`` on PostgreSQL,
JSON is text on SQLite, booleans are 0/1 on SQLite.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from subbot.ops.data.codec import CodecError, decode_value

Convert = Callable[[Any], Any]
_ZERO = timedelta(0)
#: ``datetime.isoformat()`` of an aware UTC datetime, as the encoder writes it
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?\+00:00")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def driver_connection(conn: AsyncConnection | AsyncSession) -> Any:
    """The aiosqlite / asyncpg connection under SQLAlchemy's (its transaction must already be open)."""
    if isinstance(conn, AsyncSession):
        conn = await conn.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


# --- reading: driver value -> JSON-ready value (the codec's canonical form) ----------------------


def _sqlite_dt_out(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.isoformat() + "+00:00"  # naive UTC, as the models store it
    return parsed.astimezone(UTC).isoformat()


def _pg_dt_out(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _json_text_out(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _readers(dialect: str, kinds: Sequence[str]) -> list[tuple[int, Convert]]:
    out: list[tuple[int, Convert]] = []
    for i, kind in enumerate(kinds):
        conv: Convert | None = None
        if kind == "datetime":
            conv = _sqlite_dt_out if dialect == "sqlite" else _pg_dt_out
        elif kind == "bool" and dialect == "sqlite":
            conv = bool
        elif kind == "json" and dialect == "sqlite":
            conv = _json_text_out
        elif kind in ("date", "decimal", "bytes", "float", "other"):
            raise CodecError(f"column kind {kind!r} is not supported by the bulk reader")
        if conv is not None:
            out.append((i, conv))
    return out


async def stream_encoded(
    conn: AsyncConnection, table: Table, kinds: Sequence[str], batch: int
) -> AsyncIterator[list[bytes]]:
    """Every row of ``table`` in primary-key order, as JSON lines, ``batch`` rows at a time."""
    dialect = conn.dialect.name
    drv = await driver_connection(conn)
    columns = ", ".join(_quote(c.name) for c in table.columns)
    order = ", ".join(_quote(c.name) for c in (list(table.primary_key.columns) or list(table.columns)))
    sql = f"SELECT {columns} FROM {_quote(table.name)} ORDER BY {order}"
    convert = _readers(dialect, kinds)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

    def encode(rows: Sequence[Sequence[Any]]) -> list[bytes]:
        lines = []
        for row in rows:
            values = list(row)
            for i, conv in convert:
                if values[i] is not None:
                    values[i] = conv(values[i])
            lines.append((dumps(values) + "\n").encode("utf-8"))
        return lines

    if dialect == "sqlite":
        cursor = await drv.execute(sql)
        try:
            while rows := await cursor.fetchmany(batch):
                yield encode(rows)
        finally:
            await cursor.close()
    elif dialect == "postgresql":
        cursor = await drv.cursor(sql)
        while rows := await cursor.fetch(batch):
            yield encode(rows)
    else:  # pragma: no cover - subbot supports these two
        raise CodecError(f"unsupported database {dialect}")


# --- writing: JSON value -> driver value ----------------------------------------------------------


def _aware(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise CodecError(f"not an ISO 8601 datetime: {str(value)[:40]!r}") from None
    if parsed.tzinfo is None:
        raise CodecError(f"datetime without a timezone: {value[:40]!r}")
    return parsed if parsed.utcoffset() == _ZERO else parsed.astimezone(UTC)


def _sqlite_dt_in(value: Any) -> str:
    if type(value) is str and _CANONICAL.fullmatch(value):  # what the encoder writes: no parsing needed
        return value[:10] + " " + value[11:19] + (value[19:26] if len(value) == 32 else ".000000")
    return _aware(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def _writer(dialect: str, kind: str) -> Convert | None:
    """None: the value goes to the driver as decoded from JSON (ints, strings; the database checks them)."""
    if kind == "datetime":
        return _sqlite_dt_in if dialect == "sqlite" else _aware
    if kind == "json":
        return json.dumps
    if kind in ("int", "str"):
        return None
    return lambda v: decode_value(kind, v)


def row_converter(dialect: str, kinds: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """JSON array (one backup row) -> tuple of driver values; raises CodecError on a bad value."""
    convs = [(i, conv) for i, kind in enumerate(kinds) if (conv := _writer(dialect, kind)) is not None]
    width = len(kinds)

    def convert(values: Any) -> tuple[Any, ...]:
        if type(values) is not list or len(values) != width:
            raise CodecError(f"a row must be a list of {width} values")
        for i, conv in convs:
            value = values[i]
            if value is not None:
                values[i] = conv(value)
        return tuple(values)

    return convert


async def insert_rows(
    session: AsyncSession, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert converted rows in the session's current transaction."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    drv = await driver_connection(session)
    if dialect == "postgresql":
        await drv.copy_records_to_table(table.name, records=rows, columns=list(columns))
        return
    names = ", ".join(_quote(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    await drv.executemany(f"INSERT INTO {_quote(table.name)} ({names}) VALUES ({marks})", rows)
