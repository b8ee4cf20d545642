"""``python scripts/production_tests.py --test NAME … | --all [--report FILE]``.

Exit codes: 0 no test failed (skipped tests say why); 1 at least one failed; 2 usage or configuration error.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from subbot.ops.prodtests.core import TEST_NAMES, ProductionTestSuite, Status, render_table, write_report

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(add_completion=False)


@app.command(
    help="Test the configured deployment without damaging data: " + ", ".join(TEST_NAMES) + ".",
    epilog="Exit status: 0 nothing failed, 1 a test failed, 2 usage or configuration error.",
)
def production_tests(
    test: Annotated[
        list[str] | None,
        typer.Option("--test", "-t", help=f"A test to run (repeatable): {', '.join(TEST_NAMES)}"),
    ] = None,
    all_tests: Annotated[bool, typer.Option("--all", help="Run every test")] = False,
    report: Annotated[Path | None, typer.Option(help="Also write a report: FILE.json or FILE.md")] = None,
    url: Annotated[
        str | None, typer.Option(help="Base URL for the HTTP tests (default PUBLIC_URL, else 127.0.0.1:PORT)")
    ] = None,
    load_requests: Annotated[int, typer.Option(help="Requests of the load test (1-200)")] = 20,
) -> None:
    from subbot.config import ConfigError

    console = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    names = list(TEST_NAMES) if all_tests else [t.strip().lower() for t in (test or [])]
    unknown = [n for n in names if n not in TEST_NAMES]
    if not names or unknown:
        what = f"unknown test {unknown[0]!r}" if unknown else "choose --test NAME or --all"
        err.print(f"[bold red]error:[/] {what}; tests: {', '.join(TEST_NAMES)}", highlight=False)
        raise typer.Exit(EXIT_USAGE)
    if report is not None and report.suffix.lower() not in (".json", ".md", ".markdown"):
        err.print("[bold red]error:[/] --report must end in .json or .md", highlight=False)
        raise typer.Exit(EXIT_USAGE)
    suite = ProductionTestSuite(base_url=url, load_requests=load_requests)

    async def go() -> list[object]:
        await suite.initialize()
        try:
            return list(await suite.run(names))
        finally:
            await suite.close()

    try:
        results = asyncio.run(go())
    except ConfigError as exc:
        err.print(f"[bold red]configuration error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    from subbot.ops.prodtests.core import TestResult

    typed = [r for r in results if isinstance(r, TestResult)]
    render_table(typed, console)
    if report is not None:
        write_report(report, suite, typed)
        console.print(f"report written to {report}", highlight=False)
    raise typer.Exit(EXIT_FAILED if any(r.status is Status.FAILED for r in typed) else EXIT_OK)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status instead of exiting."""
    try:
        code = app(args=argv, prog_name="production_tests.py", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return 130
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return EXIT_USAGE
        raise
    return code if isinstance(code, int) else EXIT_OK
