"""`subbot monitor`: the production monitor (same engine and options as scripts/monitor_production.py)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer


def monitor_cmd(
    check: Annotated[
        list[str] | None,
        typer.Option(help="bot, database, payment, webhook, admin, dashboard, automation, resources or all"),
    ] = None,
    full_check: Annotated[bool, typer.Option("--full-check", help="Every check")] = False,
    continuous: Annotated[
        bool, typer.Option("--continuous", help="Check every --interval seconds until Ctrl+C")
    ] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between passes")] = 60.0,
    no_alerts: Annotated[bool, typer.Option("--no-alerts", help="Check only; send no alert")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per pass")] = False,
    alert_after: Annotated[int, typer.Option(min=1, help="Consecutive failures before alerting")] = 3,
    repeat_minutes: Annotated[float, typer.Option(help="Repeat unresolved alerts this often")] = 15.0,
    max_iterations: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Check bot, database, payments, webhook, admin rights, dashboard, automation, memory; alert on
    transitions. Exit 0 healthy, 1 degraded, 2 critical."""
    from subbot.cli import load_or_exit
    from subbot.ops.checks import expand
    from subbot.ops.monitor import Options, execute

    names = [n.strip() for raw in (check or []) for n in raw.split(",") if n.strip()]
    if full_check:
        names.append("all")
    try:
        names = expand(names or ["all"])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--check") from None
    options = Options(
        names, continuous, interval, not no_alerts, json_out, max_iterations, alert_after, repeat_minutes
    )
    settings = load_or_exit()
    try:
        code = asyncio.run(execute(options, settings))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(code)
