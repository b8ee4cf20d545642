"""Control HTTP API under /control/ (JSON), mirroring the Python API of AirwallexSandbox.

Answers ``{"ok": true, "result": ...}``; bad input ``400 {"ok": false, "error": "..."}``,
an unknown object 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .core import ApiError

if TYPE_CHECKING:
    from .sandbox import AirwallexSandbox

Body = dict[str, Any]
Handler = Callable[[Request, Body], Awaitable[Any]]
MODE_KEYS = ("duplicates", "out_of_order", "delay", "drop", "concurrent", "hold")


def _get(body: Body, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in body or body[key] is None:
        if default is ...:
            raise ValueError(f'"{key}" is required')
        return default
    value = body[key]
    numeric = kind in (int, float, (int, float))
    if (isinstance(value, bool) and numeric) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ValueError(f'"{key}" must be of type {names}')
    return value


def control_routes(aw: AirwallexSandbox) -> list[Route]:
    def endpoint(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            body: Body = {}
            if request.method == "POST":
                raw = await request.body()
                if raw.strip():
                    try:
                        parsed = json.loads(raw)
                    except ValueError:
                        return JSONResponse({"ok": False, "error": "body must be JSON"}, 400)
                    if not isinstance(parsed, dict):
                        return JSONResponse({"ok": False, "error": "body must be a JSON object"}, 400)
                    body = parsed
            try:
                result = await fn(request, body)
            except ApiError as exc:
                return JSONResponse({"ok": False, "error": exc.message, "code": exc.code}, exc.status)
            except KeyError as exc:
                return JSONResponse({"ok": False, "error": f"not found: {exc}"}, 404)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"ok": False, "error": str(exc)}, 400)
            return JSONResponse({"ok": True, "result": result})

        return run

    async def state(request: Request, body: Body) -> Any:
        return aw.state()

    async def pay(request: Request, body: Body) -> Any:
        return await aw.pay(request.path_params["id"], _get(body, "outcome", str, "succeeded"))

    async def cancel(request: Request, body: Body) -> Any:
        return await aw.cancel(request.path_params["id"], _get(body, "reason", str, None))

    async def settle(request: Request, body: Body) -> Any:
        return await aw.settle_refund(request.path_params["id"], _get(body, "outcome", str, "settled"))

    async def webhook(request: Request, body: Body) -> Any:
        """Omitted switches go back to normal; ``url`` changes only when given (null clears it)."""
        unknown = set(body) - {"url", "timeout", "backoff", "max_attempts", *MODE_KEYS}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        hook = aw.webhook
        timeout = _get(body, "timeout", (int, float), hook.timeout)
        max_attempts = _get(body, "max_attempts", int, hook.max_attempts)
        backoff = _get(body, "backoff", list, list(hook.backoff))
        if timeout <= 0 or max_attempts < 1:
            raise ValueError("timeout must be > 0 and max_attempts >= 1")
        if len(backoff) != 2 or not all(isinstance(b, int | float) and b > 0 for b in backoff):
            raise ValueError("backoff must be [first, cap], two positive numbers")
        url = _get(body, "url", str, None)
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL or null")
        hook.mode(**{k: body[k] for k in MODE_KEYS if k in body})
        if "url" in body:
            aw.set_webhook_url(url)
        hook.timeout, hook.max_attempts = float(timeout), max_attempts
        hook.backoff = (float(backoff[0]), float(backoff[1]))
        return hook.describe()

    async def release(request: Request, body: Body) -> Any:
        aw.webhook.release()
        return aw.webhook.describe()

    async def faults(request: Request, body: Body) -> Any:
        kind = _get(body, "kind", str)
        paths = _get(body, "paths", (list, str), None)
        n = _get(body, "n", int, 1)
        if kind == "fail":
            aw.faults.fail_next(n, _get(body, "status", int, 500), paths)
        elif kind == "timeout":
            aw.faults.timeout_next(n, _get(body, "seconds", (int, float)), paths)
        elif kind == "clear":
            aw.faults.clear()
        else:
            raise ValueError('kind must be "fail", "timeout" or "clear"')
        return aw.faults.describe()

    async def redeliver(request: Request, body: Body) -> Any:
        return (await aw.redeliver(request.path_params["id"])).json()

    async def expire(request: Request, body: Body) -> Any:
        aw.expire_tokens()
        return {"expired": len(aw.tokens.issued)}

    return [
        Route("/control/state", endpoint(state), methods=["GET"]),
        Route("/control/intents/{id}/pay", endpoint(pay), methods=["POST"]),
        Route("/control/intents/{id}/cancel", endpoint(cancel), methods=["POST"]),
        Route("/control/refunds/{id}/settle", endpoint(settle), methods=["POST"]),
        Route("/control/webhook", endpoint(webhook), methods=["POST"]),
        Route("/control/webhook/release", endpoint(release), methods=["POST"]),
        Route("/control/faults", endpoint(faults), methods=["POST"]),
        Route("/control/events/{id}/redeliver", endpoint(redeliver), methods=["POST"]),
        Route("/control/tokens/expire", endpoint(expire), methods=["POST"]),
    ]
