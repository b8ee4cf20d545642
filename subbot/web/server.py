"""The FastAPI application: webhooks, the pay page, health, metrics and the dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from subbot import __version__
from subbot.web import airwallex_webhook, dashboard, health, metrics, pay_page, telegram_webhook

if TYPE_CHECKING:
    from subbot.app import SubbotApp


def create_web_app(app: SubbotApp) -> FastAPI:
    web = FastAPI(title="subbot", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    web.include_router(health.build_router(app))
    web.include_router(metrics.build_router(app))
    web.include_router(airwallex_webhook.build_router(app))
    web.include_router(pay_page.build_router(app))
    web.include_router(dashboard.build_router(app))
    web.add_middleware(telegram_webhook.TelegramWebhook, subbot=app)  # see its docstring
    return web
