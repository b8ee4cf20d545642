# subbot: one image for Railway, plain Docker and any container host.  Build: docker build -t subbot .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080

WORKDIR /app

# 1. The pinned dependencies (a cached layer while requirements.lock is unchanged), without the developer
#    tools the lock also pins (test runner, linters, browser automation): pip still installs anything
#    a runtime package needs.
COPY requirements.lock ./
RUN grep -vE '^(playwright|pytest|pytest-asyncio|pytest-timeout|ruff|mypy)==' requirements.lock \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# 2. subbot itself (no dependency resolution: everything is pinned above).
COPY pyproject.toml README.md ./
COPY subbot ./subbot
RUN pip install --no-deps . && rm -rf build subbot.egg-info

# 3. The runbook's entry points, run from /app exactly as the runbook writes them.
COPY main.py ./
COPY scripts ./scripts
COPY database ./database

# Non-root.  /app itself is writable (the polling lock LOCK_DIR=. lives there, as the runbook's
# `rm -f *.lock` expects); the code stays root-owned.  data/ (SQLite), logs/ and temp/ belong to subbot.
RUN useradd --create-home --uid 10001 subbot \
    && mkdir -p /app/data /app/logs /app/temp \
    && chown subbot:subbot /app /app/data /app/logs /app/temp
USER subbot

EXPOSE 8080

# No curl in the slim image: urllib raises (exit 1) on a refused connection or a 503 ("down").
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=4)"]

# Migrate, then run.  `subbot migrate` is a no-op when the schema is already at head, and `subbot run`
# refuses an un-migrated database, so a fresh container must migrate first.  Railway runs the migration
# once per deploy instead (railway.json: preDeployCommand) and starts `python main.py` directly, so
# several replicas never race to migrate.
CMD ["sh", "-c", "subbot migrate && exec python main.py"]
