"""The dashboard's read side in one import: figures, member search, listings, CSV (read-only).

The web layer imports from here; the work lives in the ``dashboard_*`` modules named below. Every
function takes the ``Database`` and reads in short transactions; none writes. Filter values the
dashboard cannot use raise ``QueryError`` (a ``ValueError``) with a message for the operator; search
text never raises.
"""

from __future__ import annotations

from subbot.services.dashboard_common import MemberStatus, QueryError, format_minor
from subbot.services.dashboard_csv import members_csv, payments_csv
from subbot.services.dashboard_lists import (
    JOB_STATES,
    PAYMENT_STATUSES,
    PROVIDERS,
    JobPage,
    JobRow,
    PaymentPage,
    PaymentRow,
    ProblemOrder,
    list_jobs,
    list_payments,
    problem_orders,
)
from subbot.services.dashboard_members import COUNT_CAP, MemberPage, MemberRow, search_members
from subbot.services.dashboard_overview import OutboxSummary, Overview, Revenue, overview

__all__ = [
    "COUNT_CAP",
    "JOB_STATES",
    "PAYMENT_STATUSES",
    "PROVIDERS",
    "JobPage",
    "JobRow",
    "MemberPage",
    "MemberRow",
    "MemberStatus",
    "OutboxSummary",
    "Overview",
    "PaymentPage",
    "PaymentRow",
    "ProblemOrder",
    "QueryError",
    "Revenue",
    "format_minor",
    "list_jobs",
    "list_payments",
    "members_csv",
    "overview",
    "payments_csv",
    "problem_orders",
    "search_members",
]
