"""``python -m subbot.sandbox.airwallex --port 8082 --webhook-url URL``"""

from __future__ import annotations

import argparse

import uvicorn

from .sandbox import AirwallexSandbox


def build(args: argparse.Namespace) -> AirwallexSandbox:
    aw = AirwallexSandbox(client_id=args.client_id, api_key=args.api_key, webhook_secret=args.webhook_secret)
    aw.base_url = f"http://{args.host}:{args.port}"
    aw.set_webhook_url(args.webhook_url)
    return aw


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m subbot.sandbox.airwallex", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--webhook-url", default=None, help="where events are POSTed (default: nowhere)")
    parser.add_argument("--client-id", default="sandbox-client")
    parser.add_argument("--api-key", default="sandbox-key")
    parser.add_argument("--webhook-secret", default="whsec-sandbox")
    args = parser.parse_args(argv)
    aw = build(args)
    print(f"Airwallex sandbox on {aw.base_url}  (API: /api/v1, control: /control/state)")
    uvicorn.run(aw.app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
