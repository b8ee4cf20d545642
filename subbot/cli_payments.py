"""`subbot payments …`: process pending payments by hand, refund an order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from subbot.app import SubbotApp

payments_cli = typer.Typer(help="Payments: reconciliation and refunds.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def with_app(work: Callable[[SubbotApp], Awaitable[T]]) -> T:
    """Build the app, check the schema, run ``work``, always close; start-up problems are one line, exit 2."""
    from subbot.app import StartupError, SubbotApp
    from subbot.cli import load_or_exit
    from subbot.config import ConfigError

    settings = load_or_exit()

    async def go() -> T:
        app = SubbotApp(settings)
        try:
            await app.prepare()  # schema check, and the configured plans mirrored into the database
            return await work(app)
        finally:
            await app.stop()

    try:
        return asyncio.run(go())
    except (StartupError, ConfigError) as exc:
        raise _fail(str(exc), 2) from None


@payments_cli.command("reconcile")
def reconcile_cmd(
    min_age_minutes: Annotated[int, typer.Option(help="Only orders older than this")] = 0,
) -> None:
    """Check pending card orders (up to three days old) against Airwallex and apply what succeeded."""
    from subbot.services.reconcile import ReconcileReport, reconcile

    async def work(app: SubbotApp) -> ReconcileReport | None:
        if app.airwallex is None:
            return None
        return await reconcile(app.ctx, app.airwallex, min_age=timedelta(minutes=min_age_minutes))

    report = with_app(work)
    if report is None:
        raise _fail("Airwallex is not configured (AIRWALLEX_CLIENT_ID, AIRWALLEX_API_KEY)", 2)
    table = Table(title="Payment reconciliation")
    table.add_column("result")
    table.add_column("orders", justify="right")
    table.add_column("ids")
    for label, ids in (
        ("applied (webhook was lost)", report.applied),
        ("still pending", report.still_pending),
        ("cancelled", report.cancelled),
        ("amount mismatch", report.mismatched),
        ("errors", report.errors),
    ):
        table.add_row(label, str(len(ids)), ", ".join(ids[:10]) + (" …" if len(ids) > 10 else ""))
    console.print(table)
    console.print(f"checked {report.checked} orders; re-applied {report.events_reapplied} stored events")
    raise typer.Exit(1 if report.errors or report.mismatched else 0)


@payments_cli.command("refund")
def refund_cmd(
    order: Annotated[str, typer.Argument(help="The order id")],
    amount: Annotated[
        str | None, typer.Option(help="Partial amount in major units (card only), e.g. 1.50")
    ] = None,
    reason: Annotated[str, typer.Option(help="Reason recorded with the refund")] = "requested by operator",
) -> None:
    """Refund an order: Airwallex refund, or refundStarPayment for Stars. A second refund is refused."""
    from subbot.domain.money import Money, MoneyError
    from subbot.services.refunds import RefundDone, RefundRefused, refund_order
    from subbot.store.models import Order

    async def work(app: SubbotApp) -> RefundDone:
        money = None
        if amount is not None:
            async with app.db.sessions() as session:
                row = await session.get(Order, order[:32])
            if row is None:
                raise RefundRefused(f"order {order} does not exist")
            try:
                money = Money.from_major(Decimal(amount), row.currency)
            except InvalidOperation:
                raise RefundRefused(f"--amount {amount!r} is not a number") from None
        return await refund_order(
            app.ctx,
            order,
            actor="cli",
            amount=money,
            reason=reason,
            airwallex=app.airwallex,
            gateway=app.gateway,
        )

    try:
        done = with_app(work)
    except (RefundRefused, MoneyError) as exc:
        raise _fail(f"refund refused: {exc}", 1) from None
    console.print(
        f"refunded {done.amount.format()} of order {done.order_id} via {done.provider} ({done.status})"
    )
