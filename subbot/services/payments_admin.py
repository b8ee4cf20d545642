"""Processing pending payments by hand (dashboard): the CLI's reconciliation, with an audit entry."""

from __future__ import annotations

from datetime import timedelta

from subbot.payments.airwallex.client import AirwallexClient
from subbot.services.context import ServiceContext
from subbot.services.members import audit
from subbot.services.reconcile import ReconcileReport, reconcile

#: An operator asking now wants every pending order looked at, as `subbot payments reconcile` does.
MANUAL_MIN_AGE = timedelta(0)


async def process_pending(ctx: ServiceContext, client: AirwallexClient, actor: str) -> ReconcileReport:
    """Run reconciliation like `subbot payments reconcile`; the outcome is written to the audit log."""
    report = await reconcile(ctx, client, min_age=MANUAL_MIN_AGE)
    async with ctx.transaction() as session:
        audit(
            session,
            ctx.clock.now(),
            actor,
            "payments_reconcile",
            None,
            checked=report.checked,
            applied=report.applied[:50],
            still_pending=len(report.still_pending),
            cancelled=len(report.cancelled),
            mismatched=report.mismatched[:50],
            errors=len(report.errors),
            events_reapplied=report.events_reapplied,
        )
    return report
