"""The Bot API specification (vendored ``api.json``) and validation against it.

Parameters of every call are coerced (form values are strings) and validated
recursively against the spec's types; results and updates produced by the
sandbox can be self-checked with :meth:`Spec.check_value`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).with_name("api.json")
SCALARS = frozenset({"Integer", "String", "Boolean", "Float", "InputFile"})
_ARRAY = "Array of "
_CONST_RE = re.compile(r"(?:always|must be) [\"“]?([a-z_]+)[\"”]?\s*$")
_INT_RE = re.compile(r"^-?\d+$")
# Fields a client library requires although the vendored spec doesn't list them (aiogram 3.31
# requires ChatMemberAdministrator.can_send_welcome_messages). Tolerated by the strict checks.
COMPAT_FIELDS: dict[str, frozenset[str]] = {
    "ChatMemberAdministrator": frozenset({"can_send_welcome_messages"}),
    "ChatAdministratorRights": frozenset({"can_send_welcome_messages"}),
}

# Parameters dropped from the docs that Telegram (and aiogram, e.g. through DefaultBotProperties or
# deprecated keyword arguments) still uses: name -> (type, the field of the method that replaced it).
LEGACY_PARAMS: dict[str, tuple[str, str]] = {
    "reply_to_message_id": ("Integer", "reply_parameters"),
    "allow_sending_without_reply": ("Boolean", "reply_parameters"),
    "disable_web_page_preview": ("Boolean", "link_preview_options"),
}


class SpecError(Exception):
    """A parameter does not match the spec; ``str(self)`` is the Telegram-style description."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class FieldSpec:
    name: str
    types: tuple[str, ...]
    required: bool
    const: str | None = None


@dataclass(frozen=True)
class TypeSpec:
    name: str
    fields: dict[str, FieldSpec] | None
    subtypes: tuple[str, ...]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    fields: dict[str, FieldSpec]
    returns: tuple[str, ...]


def _fields(raw: Sequence[Mapping[str, Any]], discriminated: bool) -> dict[str, FieldSpec]:
    out: dict[str, FieldSpec] = {}
    for f in raw:
        const = None
        if discriminated and f["name"] in ("type", "status", "source") and f["types"] == ["String"]:
            m = _CONST_RE.search(str(f.get("description", "")).rstrip("."))
            const = m.group(1) if m else None
        out[f["name"]] = FieldSpec(f["name"], tuple(f["types"]), bool(f["required"]), const)
    return out


class Spec:
    """Loaded spec: methods (case-insensitive lookup) and types."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.version: str = str(data.get("version", ""))
        self.types: dict[str, TypeSpec] = {}
        for name, t in data["types"].items():
            raw_fields = t.get("fields")
            fields = _fields(raw_fields, bool(t.get("subtype_of"))) if raw_fields is not None else None
            self.types[name] = TypeSpec(name, fields, tuple(t.get("subtypes") or ()))
        self.methods: dict[str, MethodSpec] = {}
        for name, m in data["methods"].items():
            spec = MethodSpec(name, _fields(m.get("fields") or [], False), tuple(m["returns"]))
            self.methods[name.lower()] = spec

    @classmethod
    def load(cls, path: Path | None = None) -> Spec:
        return _load_cached(str(path or SPEC_PATH))

    def find_method(self, name: str) -> MethodSpec | None:
        return self.methods.get(name.lower())

    # ------------------------------------------------------------------ params
    def parse_params(self, method: MethodSpec, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Coerce and validate call parameters; raise :class:`SpecError` on the first problem.

        Legacy parameters that Telegram still accepts (see :data:`LEGACY_PARAMS`) are kept
        under their own names; the caller decides what to do with them.
        """
        out: dict[str, Any] = {}
        fields = dict(method.fields)
        for key in raw:
            if key not in fields:
                legacy = LEGACY_PARAMS.get(key)
                if legacy is None or legacy[1] not in method.fields:
                    raise SpecError(key, f'Bad Request: unknown parameter "{key}" for method {method.name}')
                fields[key] = FieldSpec(key, (legacy[0],), False)
        for name, field in fields.items():
            if name not in raw or raw[name] is None:
                if field.required:
                    raise SpecError(name, f'Bad Request: parameter "{name}" is required')
                continue
            value = self._coerce(raw[name], field.types, name)
            err = self.check_union(value, field.types, name, strict=True)
            if err is not None:
                raise SpecError(name, f'Bad Request: parameter "{name}" is invalid: {err}')
            out[name] = value
        return out

    def _coerce(self, value: Any, types: Sequence[str], name: str) -> Any:
        if not isinstance(value, str):
            return value
        if "Integer" in types and _INT_RE.match(value.strip()):
            return int(value.strip())
        if "Float" in types:
            try:
                return float(value)
            except ValueError:
                pass
        if "Boolean" in types and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        if "String" in types or "InputFile" in types:
            return value
        if any(t.startswith(_ARRAY) or t in self.types for t in types):
            try:
                return json.loads(value)
            except ValueError:
                raise SpecError(name, f'Bad Request: parameter "{name}": can\'t parse JSON') from None
        return value

    # ------------------------------------------------------------------ values
    def check_union(self, value: Any, types: Sequence[str], path: str, strict: bool = True) -> str | None:
        """Return ``None`` if ``value`` matches one of ``types`` else an error text."""
        errors: list[tuple[int, str]] = []
        for t in types:
            err = self.check_value(value, t, path, strict)
            if err is None:
                return None
            errors.append((self._affinity(value, t), err))
        if len(errors) == 1:
            return errors[0][1]
        best = max(errors, key=lambda e: e[0])
        if best[0] > 0:
            return best[1]
        return f"{path}: expected {' or '.join(types)}"

    def _affinity(self, value: Any, t: str) -> int:
        """How much a dict looks like type ``t`` (to pick the relevant error of a union)."""
        spec = self.types.get(t)
        if not isinstance(value, dict) or spec is None:
            return 0
        if spec.fields is not None:
            for f in spec.fields.values():
                if f.const is not None and value.get(f.name) == f.const:
                    return 1000
            return sum(1 for k in value if k in spec.fields)
        return max((self._affinity(value, s) for s in spec.subtypes), default=0)

    def check_value(self, value: Any, t: str, path: str, strict: bool = True) -> str | None:
        if t.startswith(_ARRAY):
            inner = t[len(_ARRAY) :]
            if not isinstance(value, list):
                return f"{path}: expected {t}"
            for i, item in enumerate(value):
                err = self.check_value(item, inner, f"{path}[{i}]", strict)
                if err is not None:
                    return err
            return None
        if t in SCALARS:
            return None if _scalar_ok(value, t) else f"{path}: expected {t}, got {_short(value)}"
        spec = self.types.get(t)
        if spec is None:
            return f"{path}: unknown type {t}"
        if spec.subtypes:
            return self.check_union(value, spec.subtypes, path, strict)
        if not isinstance(value, dict):
            return f"{path}: expected {t} object, got {_short(value)}"
        if spec.fields is None:
            return None
        if strict:
            extra = COMPAT_FIELDS.get(t, frozenset())
            for key in value:
                if key not in spec.fields and key not in extra:
                    return f'{path}: unknown field "{key}" in {t}'
        for name, field in spec.fields.items():
            sub = f"{path}.{name}"
            if name not in value or value[name] is None:
                if field.required:
                    return f'{path}: field "{name}" of {t} is required'
                continue
            if field.const is not None and value[name] != field.const:
                return f'{sub}: must be "{field.const}" for {t}'
            err = self.check_union(value[name], field.types, sub, strict)
            if err is not None:
                return err
        return None

    def check_result(self, method: MethodSpec, value: Any) -> str | None:
        return self.check_union(value, method.returns, "result", strict=True)


def _scalar_ok(value: Any, t: str) -> bool:
    if t == "Integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "Float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t == "String":
        return isinstance(value, str)
    if t == "Boolean":
        return isinstance(value, bool)
    return value is not None  # InputFile: attach://, file_id, URL or an uploaded file


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


@lru_cache(maxsize=4)
def _load_cached(path: str) -> Spec:
    with open(path, encoding="utf-8") as fh:
        return Spec(json.load(fh))
