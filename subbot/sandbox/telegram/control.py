"""Control HTTP API under /control/ (JSON), mirroring the Python API of TelegramSandbox."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from .sandbox import TelegramSandbox

Body = dict[str, Any]
Handler = Callable[[Request, Body], Awaitable[Any]]


class BadInput(ValueError):
    pass


def _get(
    body: Body, key: str, kind: type | tuple[type, ...], default: Any = ..., *, allow_none: bool = False
) -> Any:
    if key not in body or (body[key] is None and default is not ...):
        if default is ...:
            raise BadInput(f'"{key}" is required')
        return default
    value = body[key]
    if value is None and allow_none:
        return None
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise BadInput(f'"{key}" must be a number')
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BadInput(f'"{key}" must be of type {names}')
    return value


def _path_int(request: Request, key: str) -> int:
    try:
        return int(request.path_params[key])
    except ValueError:
        raise BadInput(f"{key} must be an integer") from None


def control_routes(sb: TelegramSandbox) -> list[Route]:
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
            except (BadInput, ValueError, TypeError) as exc:
                return JSONResponse({"ok": False, "error": str(exc)}, 400)
            except KeyError as exc:
                return JSONResponse({"ok": False, "error": f"not found: {exc}"}, 404)
            return JSONResponse({"ok": True, "result": result})

        return run

    def token(body: Body, request: Request | None = None) -> str | None:
        bot_id = body.get("bot_id")
        if bot_id is None and request is not None and request.query_params.get("bot_id"):
            bot_id = request.query_params["bot_id"]
        if bot_id is not None:
            try:
                return sb.world.bots[int(bot_id)].token
            except (KeyError, ValueError):
                raise BadInput("unknown bot_id") from None
        tok = _get(body, "bot_token", str, None)
        return tok if isinstance(tok, str) else None

    def user(request: Request) -> int:
        uid = _path_int(request, "uid")
        if uid not in sb.world.users:
            raise KeyError(f"user {uid}")
        return uid

    def chat(request: Request) -> int:
        cid = _path_int(request, "cid")
        if cid not in sb.world.groups:
            raise KeyError(f"chat {cid}")
        return cid

    async def state(r: Request, b: Body) -> Any:
        w = sb.world
        return {
            "bots": [
                {"id": x.id, "username": x.user.username, "first_name": x.user.first_name}
                for x in w.bots.values()
            ],
            "users": [u.to_api() for u in w.users.values()],
            "groups": [w.group_chat(g) for g in w.groups.values()],
            "now": sb.now(),
            "version": sb.spec.version,
        }

    async def add_bot(r: Request, b: Body) -> Any:
        return {
            "id": sb.add_bot(
                _get(b, "token", str),
                _get(b, "username", str, "subbot_bot"),
                _get(b, "first_name", str, "Subbot"),
            )
        }

    async def add_user(r: Request, b: Body) -> Any:
        name = _get(b, "first_name", str)
        if not name.strip():
            raise BadInput('"first_name" must not be empty')
        uid = sb.add_user(
            name,
            _get(b, "username", str, None),
            _get(b, "last_name", str, None),
            _get(b, "language_code", str, "en"),
        )
        return {"id": uid}

    async def add_group(r: Request, b: Body) -> Any:
        return {
            "id": sb.add_group(
                _get(b, "title", str), _get(b, "owner_id", int), _get(b, "type", str, "supergroup")
            )
        }

    async def chat_info(r: Request, b: Body) -> Any:
        cid = chat(r)
        w = sb.world
        group = w.groups[cid]
        members = []
        for uid, status in sb.members(cid).items():
            person = w.person(uid)
            members.append({"user": person.to_api() if person else {"id": uid}, "status": status})
        return {
            "chat": w.group_chat(group),
            "owner_id": group.owner_id,
            "members": members,
            "links": sb.invite_links(cid),
            "join_requests": sorted(group.join_requests),
        }

    async def chat_messages(r: Request, b: Body) -> Any:
        return sb.chat_messages(chat(r))

    async def set_admin(r: Request, b: Body) -> Any:
        sb.set_admin(
            chat(r),
            _get(b, "user_id", int),
            _get(b, "can_invite_users", bool, True),
            _get(b, "can_restrict_members", bool, True),
            _get(b, "notify", bool, False),
        )
        return {"status": sb.member_status(chat(r), b["user_id"])}

    async def add_member(r: Request, b: Body) -> Any:
        sb.add_member(
            chat(r), _get(b, "user_id", int), _get(b, "status", str, "member"), _get(b, "notify", bool, False)
        )
        return {"status": sb.member_status(chat(r), b["user_id"])}

    async def send(r: Request, b: Body) -> Any:
        return await sb.send_text(user(r), _get(b, "text", str), token(b))

    async def press(r: Request, b: Body) -> Any:
        qid = await sb.press_button(user(r), _get(b, "message_id", int), _get(b, "data", str), token(b))
        return {"callback_query_id": qid}

    async def open_link(r: Request, b: Body) -> Any:
        return {"result": await sb.open_invite_link(user(r), _get(b, "link", str))}

    async def pay(r: Request, b: Body) -> Any:
        wait = float(_get(b, "timeout", (int, float), 10.0))
        if "link" in b:
            return await sb.pay_invoice_link(user(r), _get(b, "link", str), wait)
        return await sb.pay_invoice(user(r), _get(b, "message_id", int), token(b), wait)

    async def leave(r: Request, b: Body) -> Any:
        await sb.leave_chat(user(r), _get(b, "chat_id", int))
        return {}

    async def block(r: Request, b: Body) -> Any:
        await sb.block_bot(user(r), token(b))
        return {}

    async def unblock(r: Request, b: Body) -> Any:
        await sb.unblock_bot(user(r), token(b))
        return {}

    async def messages(r: Request, b: Body) -> Any:
        uid, tok = user(r), token(b, r)
        if r.query_params.get("all") in ("1", "true"):
            return sb.conversation(uid, tok)
        return sb.messages_to(uid, tok)

    async def calls(r: Request, b: Body) -> Any:
        try:
            since = int(r.query_params.get("since", "0"))
        except ValueError:
            raise BadInput("since must be an integer") from None
        recs = sb.calls[max(0, since) :]
        return {"next": len(sb.calls), "calls": [c.to_json() for c in recs]}

    async def violations(r: Request, b: Body) -> Any:
        return list(sb.violations)

    async def refunds(r: Request, b: Body) -> Any:
        return list(sb.refunds)

    async def stats(r: Request, b: Body) -> Any:
        return dict(sb.stats)

    async def faults(r: Request, b: Body) -> Any:
        if r.method == "POST":
            action = _get(b, "action", str)
            methods = _get(b, "methods", list, None)
            if methods is not None and not all(isinstance(m, str) for m in methods):
                raise BadInput('"methods" must be a list of strings')
            if action == "fail_next":
                sb.faults.fail_next(_get(b, "n", int, 1), _get(b, "status", int, 500), methods)
            elif action == "rate_limit_next":
                sb.faults.rate_limit_next(_get(b, "n", int, 1), _get(b, "retry_after", int, 1), methods)
            elif action == "delay":
                sb.faults.delay(float(_get(b, "seconds", (int, float))), methods)
            elif action == "clear":
                sb.faults.clear()
            else:
                raise BadInput("action must be fail_next, rate_limit_next, delay or clear")
        return sb.faults.describe()

    async def limits(r: Request, b: Body) -> Any:
        if r.method == "POST":
            sb.rate_limits.update(b)
            sb.limiter.reset()
        return dataclasses.asdict(sb.rate_limits)

    async def clock(r: Request, b: Body) -> Any:
        if r.method == "POST":
            sb.advance_clock(float(_get(b, "advance", (int, float))))
        return {"now": sb.now()}

    async def renew(r: Request, b: Body) -> Any:
        return sb.renew_subscription(_get(b, "telegram_payment_charge_id", str))

    get, post, both = ["GET"], ["POST"], ["GET", "POST"]
    table: list[tuple[str, Handler, list[str]]] = [
        ("/control/state", state, get),
        ("/control/bots", add_bot, post),
        ("/control/users", add_user, post),
        ("/control/groups", add_group, post),
        ("/control/chats/{cid}", chat_info, get),
        ("/control/chats/{cid}/messages", chat_messages, get),
        ("/control/chats/{cid}/admins", set_admin, post),
        ("/control/chats/{cid}/members", add_member, post),
        ("/control/users/{uid}/send", send, post),
        ("/control/users/{uid}/press", press, post),
        ("/control/users/{uid}/open_link", open_link, post),
        ("/control/users/{uid}/pay", pay, post),
        ("/control/users/{uid}/leave", leave, post),
        ("/control/users/{uid}/block", block, post),
        ("/control/users/{uid}/unblock", unblock, post),
        ("/control/users/{uid}/messages", messages, get),
        ("/control/calls", calls, get),
        ("/control/violations", violations, get),
        ("/control/refunds", refunds, get),
        ("/control/stats", stats, get),
        ("/control/faults", faults, both),
        ("/control/limits", limits, both),
        ("/control/clock", clock, both),
        ("/control/subscriptions/renew", renew, post),
    ]
    return [Route(path, endpoint(fn), methods=m) for path, fn, m in table]
