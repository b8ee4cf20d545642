"""The Bot API call pipeline: auth → method lookup → spec validation → faults → limits → method."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse

from . import methods, methods_bot, methods_chat, methods_pay  # noqa: F401  (register implementations)
from .core import REGISTRY, ApiError, Ctx
from .limits import FaultInjector, RateLimiter
from .spec import LEGACY_PARAMS, Spec, SpecError
from .state import World

log = logging.getLogger("subbot.sandbox.telegram")


@dataclass
class CallRecord:
    """One Bot API call as the sandbox saw it."""

    method: str
    params: dict[str, Any]
    ok: bool
    error_code: int | None
    description: str | None
    at: float
    bot_id: int | None = None
    result: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": _jsonable(self.params),
            "ok": self.ok,
            "error_code": self.error_code,
            "description": self.description,
            "at": self.at,
            "bot_id": self.bot_id,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, UploadFile):
        return f"<file {value.filename}>"
    return value


class Dispatcher:
    def __init__(self, world: World, spec: Spec, limiter: RateLimiter, faults: FaultInjector) -> None:
        self.world = world
        self.spec = spec
        self.limiter = limiter
        self.faults = faults
        self.calls: list[CallRecord] = []
        self.stats: dict[str, int] = {"calls": 0, "errors": 0, "429": 0}
        self.check_results = True
        self.notices: list[str] = []  # accepted but noteworthy (deprecated parameters)

    def _violation(self, text: str) -> None:
        self.world.violations.append(text)
        log.warning("sandbox violation: %s", text)

    async def call(self, token: str, name: str, raw: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Run one Bot API call; returns (HTTP status, response body)."""
        self.stats["calls"] += 1
        bot = self.world.tokens.get(token)
        spec = self.spec.find_method(name)
        mname = spec.name if spec else name
        params: dict[str, Any] = raw
        try:
            if bot is None:
                self._violation(f"{name}: unknown bot token")
                raise ApiError(401, "Unauthorized")
            if spec is None:
                self._violation(f"{name}: method not found")
                raise ApiError(404, "Not Found: method not found")
            try:
                params = self.spec.parse_params(spec, raw)
            except SpecError as exc:
                self._violation(f"{mname}: {exc}")
                raise ApiError(400, str(exc)) from None
            legacy = sorted(set(params) & set(LEGACY_PARAMS))
            if legacy:
                self.notices.append(f"{mname}: deprecated parameter(s) {', '.join(legacy)}")
            delay, fault = self.faults.take(spec.name.lower())
            if delay > 0:
                await asyncio.sleep(delay)
            if fault is not None:
                raise fault
            impl = REGISTRY.get(spec.name.lower())
            if impl is None:
                self._violation(f"{mname}: method not supported by sandbox")
                raise ApiError(400, "Bad Request: method not supported by sandbox")
            self.limiter.check(bot.id, spec.name.lower(), params.get("chat_id"))
            result = await impl(Ctx(self.world, bot), params)
            if self.check_results:
                problem = self.spec.check_result(spec, result)
                if problem is not None:
                    self._violation(f"sandbox bug: {mname} returned an invalid result: {problem}")
        except ApiError as exc:
            self.stats["errors"] += 1
            if exc.code == 429:
                self.stats["429"] += 1
            self._record(mname, params, exc.code, exc.description, bot)
            return exc.code, exc.to_json()
        except Exception as exc:
            log.exception("sandbox failure in %s", mname)
            self._violation(f"sandbox bug: {mname} raised {type(exc).__name__}: {exc}")
            self.stats["errors"] += 1
            self._record(mname, params, 500, "Internal Server Error", bot)
            return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        self._record(mname, params, None, None, bot, result)
        return 200, {"ok": True, "result": result}

    def _record(
        self,
        name: str,
        params: dict[str, Any],
        code: int | None,
        desc: str | None,
        bot: Any,
        result: Any = None,
    ) -> None:
        bot_id = bot.id if bot is not None else None
        rec = CallRecord(name, params, code is None, code, desc, self.world.now(), bot_id, result)
        self.calls.append(rec)

    async def http(self, request: Request) -> JSONResponse:
        token = request.path_params["token"]
        name = request.path_params["method"]
        try:
            raw = await read_params(request)
        except ValueError as exc:
            self.stats["calls"] += 1
            self.stats["errors"] += 1
            self._violation(f"{name}: {exc}")
            bot = self.world.tokens.get(token)
            self._record(name, {}, 400, f"Bad Request: {exc}", bot)
            return JSONResponse({"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}, 400)
        status, body = await self.call(token, name, raw)
        return JSONResponse(body, status)

    async def webhook_reply(self, token: str, body: dict[str, Any]) -> None:
        """A webhook answered with a method call (Telegram executes it, result is discarded)."""
        params = dict(body)
        name = str(params.pop("method"))
        status, answer = await self.call(token, name, params)
        if status != 200:
            log.info("webhook reply %s failed: %s", name, answer.get("description"))


async def read_params(request: Request) -> dict[str, Any]:
    """Query string + body (JSON, urlencoded or multipart) → raw parameter dict."""
    params: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "GET":
        return params
    if ctype == "application/json":
        body = await request.body()
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError:
                raise ValueError("can't parse JSON request body") from None
            if not isinstance(data, dict):
                raise ValueError("JSON request body must be an object")
            params.update(data)
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        for key, value in form.multi_items():
            params[key] = value
    else:
        body = await request.body()
        if body.strip():
            raise ValueError(f"unsupported content type {ctype!r}")
    return params
