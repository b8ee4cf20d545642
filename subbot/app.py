"""Composition root: builds settings, database, bot, gateway, services and workers, and runs them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.telegram import TelegramAPIServer

from subbot import bot as bot_pkg
from subbot.bot.middlewares import MaintenanceMiddleware
from subbot.bot.throttle import ThrottleMiddleware
from subbot.config import Settings
from subbot.domain.clock import Clock, SystemClock
from subbot.domain.plans import Plan, load_plans
from subbot.metrics import UPDATE_ERRORS, UPDATE_SECONDS
from subbot.ops import maintenance as maintenance_flag
from subbot.ops.incidents.service import SWEEP_SECONDS as INCIDENT_SWEEP_SECONDS
from subbot.ops.incidents.service import Incidents
from subbot.payments.airwallex.client import AirwallexClient
from subbot.services import broadcasts, plan_admin
from subbot.services.context import Policy, ServiceContext
from subbot.services.lifecycle import sweep_expired, sweep_reminders
from subbot.services.reconcile import reconcile
from subbot.services.rights import ChatRights, check_rights
from subbot.store import plans as plan_store
from subbot.store.db import Database, create_database
from subbot.store.migrate import SchemaState, schema_state
from subbot.telegram.gateway import TelegramGateway
from subbot.telegram.json_session import JsonAiohttpSession
from subbot.telegram.limiter import Limits, RateLimiter
from subbot.workers.jobs import build_handlers
from subbot.workers.outbox import OutboxWorker
from subbot.workers.scheduler import Scheduler, Sweep

log = logging.getLogger(__name__)


class StartupError(Exception):
    """A reason the process cannot start, worded for the operator."""


@dataclass
class SubbotApp:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    limits: Limits = field(default_factory=Limits)
    db: Database = field(init=False)
    bot: Bot = field(init=False)
    dispatcher: Dispatcher = field(init=False)
    gateway: TelegramGateway = field(init=False)
    ctx: ServiceContext = field(init=False)
    configured_plans: tuple[Plan, ...] = field(init=False)  # from PLANS_FILE or the defaults
    worker: OutboxWorker = field(init=False)
    airwallex: AirwallexClient | None = field(init=False, default=None)
    scheduler: Scheduler = field(init=False)
    incidents: Incidents = field(init=False)
    started_at: float = field(default_factory=time.monotonic)
    maintenance: bool = False
    maintenance_message: str = ""
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        self.maintenance = s.maintenance_mode
        self.maintenance_message = s.maintenance_message
        self.db = create_database(
            s.database_url, pool_size=s.database_pool_size, pooler=not s.database_statement_cache_enabled
        )
        chats = tuple(
            dict.fromkeys(c for c in (s.group_id, *s.extra_chat_ids, *s.join_request_chat_ids) if c)
        )
        plans = load_plans(Path(s.plans_file) if s.plans_file else None, chats)
        self.configured_plans = tuple(plans)
        policy = Policy(
            invite_ttl=timedelta(minutes=s.invite_link_ttl_minutes),
            order_ttl=timedelta(minutes=s.order_ttl_minutes),
            outbox_max_attempts=s.outbox_max_attempts,
            join_request_chats=frozenset(s.join_request_chat_ids),
            refund_revokes_access=s.refund_revokes_access,
            reminder_offsets=tuple(
                timedelta(days=d) for d in sorted(set(s.reminder_offsets_days), reverse=True)
            ),
            expiry_grace=timedelta(hours=s.expiry_grace_hours),
        )
        self.ctx = ServiceContext(
            self.db, self.clock, {p.code: p for p in plans}, policy, frozenset(s.admin_ids)
        )
        session = JsonAiohttpSession(api=TelegramAPIServer.from_base(s.telegram_api_url.rstrip("/")))
        self.bot = Bot(s.require_bot_token(), session=session)
        self.gateway = TelegramGateway(self.bot, RateLimiter(self.limits))
        if s.airwallex_enabled:
            assert s.airwallex_client_id is not None and s.airwallex_api_key is not None
            self.airwallex = AirwallexClient(
                s.airwallex_base_url,
                s.airwallex_client_id,
                s.airwallex_api_key.get_secret_value(),
                clock=self.clock,
            )
        self.dispatcher = Dispatcher(
            disable_fsm=True,  # no handler keeps conversation state: skips a storage lookup per update
            ctx=self.ctx,
            gateway=self.gateway,
            app=self,
            airwallex=self.airwallex,
            pay_base_url=self.pay_base_url,
        )
        maintenance = MaintenanceMiddleware(
            lambda: self.maintenance, lambda: self.maintenance_message, frozenset(s.admin_ids)
        )
        if self.limits.enabled:  # Limits(enabled=False): tests and benchmarks act faster than any member
            throttle = ThrottleMiddleware(s.throttle_rate, s.throttle_burst, frozenset(s.admin_ids))
            self.dispatcher.message.outer_middleware(throttle)
            self.dispatcher.callback_query.outer_middleware(throttle)
        self.dispatcher.update.outer_middleware(_UpdateTimer())
        self.dispatcher.message.middleware(maintenance)
        self.dispatcher.callback_query.middleware(maintenance)
        self.dispatcher.include_routers(*bot_pkg.get_routers())
        self.worker = OutboxWorker(
            self.ctx, build_handlers(self.ctx, self.gateway), concurrency=s.outbox_concurrency
        )

        self.incidents = Incidents.from_settings(s, self.db, self.clock)
        self.scheduler = Scheduler(self._sweeps())

    def _sweeps(self) -> list[Sweep]:
        sweeps: list[Sweep] = []
        if self.airwallex is not None:
            client = self.airwallex

            async def reconcile_payments() -> None:
                report = await reconcile(self.ctx, client)
                if report.applied or report.errors:
                    log.warning(
                        "payment reconciliation: applied %s, errors %s", report.applied, report.errors
                    )

            sweeps.append(
                Sweep("reconcile_payments", self.settings.reconcile_interval_seconds, reconcile_payments)
            )

        async def lifecycle_sweep() -> None:
            # Loop until nothing is due, so a long downtime is caught up at once, batch by batch.
            while await sweep_reminders(self.ctx) or (await sweep_expired(self.ctx)).expired:
                pass

        sweeps.append(Sweep("lifecycle", self.settings.sweep_interval_seconds, lifecycle_sweep))
        sweeps.append(Sweep("maintenance", maintenance_flag.REFRESH_SECONDS, self.refresh_maintenance))
        # another instance's dashboard may have edited a plan
        sweeps.append(Sweep("plans", plan_admin.RELOAD_SECONDS, lambda: plan_admin.reload_plans(self.ctx)))
        broadcasts.set_rate(self.settings.broadcast_rate)  # the pace of this process's broadcast jobs
        sweeps.append(Sweep("broadcasts", broadcasts.SWEEP_SECONDS, lambda: broadcasts.sweep(self.ctx)))
        sweeps.append(Sweep("incidents", INCIDENT_SWEEP_SECONDS, self.incidents.sweep))  # escalate, remind
        return sweeps

    @property
    def pay_base_url(self) -> str:
        """Where members open the card payment page: PUBLIC_URL, or this server on loopback (demo)."""
        return self.settings.public_url or f"http://127.0.0.1:{self.settings.port}"

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.public_url)

    async def check_schema(self) -> None:
        state, rev = await schema_state(self.db)
        if state is SchemaState.EMPTY:
            raise StartupError("the database has no schema yet: run `subbot migrate` first")
        if state is SchemaState.BEHIND:
            raise StartupError(f"the database schema ({rev}) is older than this code: run `subbot migrate`")
        if state is SchemaState.AHEAD:
            raise StartupError(
                f"the database schema ({rev}) is newer than this code: deploy the newer version, or restore"
            )

    async def refresh_maintenance(self) -> None:
        """MAINTENANCE_MODE (env or main.py) OR the `flags` row (`subbot maintenance`, `/maintenance`)."""
        try:
            flag = await maintenance_flag.read_flag(self.db)
        except Exception as exc:  # database down: keep the last known state, the next sweep retries
            log.warning(
                "maintenance flag unreadable (%s); keeping maintenance=%s",
                exc.__class__.__name__,
                self.maintenance,
            )
            return
        state = maintenance_flag.effective(
            self.settings.maintenance_mode, self.settings.maintenance_message, flag
        )
        if state.enabled != self.maintenance:
            log.warning("maintenance mode %s (%s)", "on" if state.enabled else "off", state.source)
        self.maintenance, self.maintenance_message = state.enabled, state.message

    async def prepare(self) -> None:
        """Check the schema and merge the configured plans into the database's; no Telegram call yet."""
        await self.check_schema()
        await self.refresh_maintenance()
        async with self.ctx.transaction() as session:
            # the database holds the plans (dashboard edits included); the file only merges its changes
            loaded = await plan_store.sync(
                session, self.configured_plans, self.clock.now(), self.ctx.policy.join_request_chats
            )
        self.ctx.plans = {p.code: p for p in loaded}

    async def start_workers(self) -> None:
        self._tasks.append(asyncio.create_task(self.worker.run(), name="outbox"))
        self._tasks.append(asyncio.create_task(self.scheduler.run(), name="scheduler"))

    async def report_rights(self) -> list[ChatRights]:
        """Log a clear line for every chat where the bot lacks a right it needs."""
        results = await check_rights(self.gateway, self.ctx.all_chat_ids())
        for result in results:
            if not result.ok:
                log.error("bot rights: %s", result.describe())
        return results

    async def start_bot(self) -> None:
        """Polling (default) or webhook registration when PUBLIC_URL is set."""
        await self.report_rights()
        if self.webhook_mode:
            await self.bot.set_webhook(
                self.settings.telegram_webhook_url or "",
                secret_token=self.settings.telegram_webhook_secret,
                allowed_updates=bot_pkg.ALLOWED_UPDATES,
            )
            return
        await self.bot.delete_webhook(drop_pending_updates=False)
        self._tasks.append(
            asyncio.create_task(
                self.dispatcher.start_polling(
                    self.bot,
                    allowed_updates=bot_pkg.ALLOWED_UPDATES,
                    handle_signals=False,
                    close_bot_session=False,
                    polling_timeout=10,
                ),
                name="polling",
            )
        )

    async def stop(self) -> None:
        self.worker.stop()
        self.scheduler.stop()
        with contextlib.suppress(RuntimeError):
            await self.dispatcher.stop_polling()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.bot.session.close()
        if self.airwallex is not None:
            await self.airwallex.aclose()
        await self.incidents.aclose()
        await self.db.dispose()


class _UpdateTimer:
    """Outer middleware: logs slow updates; the metrics issue hangs histograms here."""

    async def __call__(self, handler: Any, event: Any, data: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return await handler(event, data)
        except Exception:
            UPDATE_ERRORS.inc()
            raise
        finally:
            elapsed = time.perf_counter() - started
            UPDATE_SECONDS.observe(elapsed)
            if elapsed > 2.0:
                log.warning("update handled in %.2fs", elapsed)
