"""Incident management, as the runbook describes it (docs/incidents.md).

- ``model``: the incident as plain data, input cleaning, errors;
- ``lifecycle``: pure transitions (open, monitor step, update, acknowledge, resolve, escalation, reminders);
- ``policy``: escalation matrix, update cadence, channels, from the settings;
- ``templates``: the runbook's messages for Slack (mrkdwn) and Telegram (HTML);
- ``impact``: members, payments and work affected in the incident's window, from the data;
- ``review``: the post-incident review in Markdown;
- ``rows``, ``delivery``: the database side and the sending of messages;
- ``service``: the use cases (CLI, bot, dashboard, sweeps); ``tracker``: the monitor's hook.
"""
