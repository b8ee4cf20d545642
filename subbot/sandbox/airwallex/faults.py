"""Fault injection for the /api/v1 endpoints: failing and slow answers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .core import ApiError

FAIL_CODES = {
    429: ("too_many_requests", "Too many requests, please retry later"),
    500: ("internal_error", "An internal error occurred"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service temporarily unavailable"),
    504: ("gateway_timeout", "Gateway timeout"),
}


@dataclass
class _Rule:
    kind: str  # "fail" | "timeout"
    remaining: int
    paths: tuple[str, ...] | None
    status: int = 500
    seconds: float = 0.0

    def matches(self, path: str) -> bool:
        return self.paths is None or any(path.startswith(p) for p in self.paths)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "paths": list(self.paths) if self.paths is not None else None,
            "status": self.status,
            "seconds": self.seconds,
        }


def _paths(paths: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if paths is None:
        return None
    if isinstance(paths, str):
        paths = [paths]
    out = tuple(paths)
    if not out or not all(isinstance(p, str) and p.startswith("/") for p in out):
        raise ValueError("paths must be a non-empty list of path prefixes starting with /")
    return out


@dataclass
class FaultInjector:
    """Make the next API calls fail or answer late.

    ``paths`` are prefixes of the request path (e.g. ``/api/v1/pa/payment_intents/create``);
    None means every ``/api/v1`` call, login included. Rules apply in the order they were added.
    """

    rules: list[_Rule] = field(default_factory=list)

    def fail_next(self, n: int = 1, status: int = 500, paths: Iterable[str] | str | None = None) -> None:
        """The next ``n`` matching calls answer ``status`` without doing anything."""
        if status not in FAIL_CODES:
            raise ValueError(f"status must be one of {sorted(FAIL_CODES)}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError("n must be an integer >= 1")
        self.rules.append(_Rule("fail", n, _paths(paths), status=status))

    def timeout_next(
        self, n: int = 1, seconds: float = 30.0, paths: Iterable[str] | str | None = None
    ) -> None:
        """The next ``n`` matching calls are processed normally but answered ``seconds`` late.

        A client that gives up earlier has still created the object: its retry with the same
        ``request_id`` gets ``duplicate_request``, as on the real platform.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError("n must be an integer >= 1")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError("seconds must be a number >= 0")
        self.rules.append(_Rule("timeout", n, _paths(paths), seconds=float(seconds)))

    def clear(self) -> None:
        self.rules.clear()

    def describe(self) -> list[dict[str, Any]]:
        return [r.describe() for r in self.rules]

    def take(self, path: str) -> tuple[float, ApiError | None]:
        """For a call of ``path``: (seconds to delay the answer, error to answer instead or None)."""
        for rule in self.rules:
            if not rule.matches(path):
                continue
            rule.remaining -= 1
            if rule.remaining <= 0:
                self.rules.remove(rule)
            if rule.kind == "timeout":
                return rule.seconds, None
            code, message = FAIL_CODES[rule.status]
            return 0.0, ApiError(rule.status, code, message)
        return 0.0, None
