"""Type-preserving JSON encoding of table rows, portable between SQLite and PostgreSQL.

Every column gets a *kind* from its SQLAlchemy type; a row is a JSON array in column order where
datetimes are aware UTC ISO 8601 strings, JSON columns are nested JSON, bytes are base64 and decimals
are strings. Decoding uses the kinds recorded with the data, so a file decodes the same on any backend.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)

from subbot.store.models import Base

Encoder = Callable[[Any], Any]
KINDS = ("datetime", "json", "bool", "int", "float", "decimal", "str", "bytes", "date", "other")


class CodecError(ValueError):
    """A value that does not fit its column."""


def tables() -> list[Table]:
    """Every table of the models, parents before children (foreign-key order)."""
    return list(Base.metadata.sorted_tables)


def column_kind(column: ColumnElement[Any]) -> str:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, DateTime):
        return "datetime"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, JSON):
        return "json"
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, Integer):
        return "int"
    if isinstance(kind, Float):
        return "float"
    if isinstance(kind, Numeric):
        return "decimal"
    if isinstance(kind, String | Text):
        return "str"
    if isinstance(kind, LargeBinary):
        return "bytes"
    return "other"


def _enc_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise CodecError("naive datetime read from the database")
    return value.astimezone(UTC).isoformat()


def _dec_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise CodecError(f"expected an ISO 8601 datetime string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CodecError(f"not an ISO 8601 datetime: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise CodecError(f"datetime without a timezone: {value[:40]!r}")
    return parsed.astimezone(UTC)


def _dec_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"expected a whole number, got {type(value).__name__}")
    return value


def _dec_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise CodecError(f"expected true or false, got {type(value).__name__}")
    return value


def _dec_str(value: Any) -> str:
    if not isinstance(value, str):
        raise CodecError(f"expected a string, got {type(value).__name__}")
    return value


def _dec_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CodecError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _dec_bytes(value: Any) -> bytes:
    try:
        return base64.b64decode(_dec_str(value), validate=True)
    except ValueError:
        raise CodecError("invalid base64") from None


def _dec_date(value: Any) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(_dec_str(value))
    except ValueError:
        raise CodecError(f"not an ISO date: {str(value)[:20]!r}") from None


_ENCODERS: dict[str, Encoder | None] = {
    "datetime": _enc_datetime,
    "date": lambda v: v.isoformat(),
    "bytes": lambda v: base64.b64encode(v).decode("ascii"),
    "decimal": str,
}
_DECODERS: dict[str, Encoder] = {
    "datetime": _dec_datetime,
    "date": _dec_date,
    "json": lambda v: v,
    "bool": _dec_bool,
    "int": _dec_int,
    "float": _dec_float,
    "decimal": lambda v: Decimal(_dec_str(v)),
    "str": _dec_str,
    "bytes": _dec_bytes,
    "other": lambda v: v,
}


def decode_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    return _DECODERS.get(kind, _DECODERS["other"])(value)


def encode_value(kind: str, value: Any) -> Any:
    """One value as JSON (for the export's objects)."""
    if value is None:
        return None
    enc = _ENCODERS.get(kind)
    return enc(value) if enc is not None else value
