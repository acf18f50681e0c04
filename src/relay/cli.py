"""The command line: relay serve | migrate | clients ..."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from relay.clients.service import ALL_SCOPES, ClientService, client_fields
from relay.config import Settings, describe_error
from relay.container import build_clients, open_store
from relay.errors import RelayError
from relay.observability.logging import configure_logging, log_config
from relay.storage import Store, StoreUnavailable
from relay.tools.registry import ToolFileError, load_tool_file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start Relay")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="bring the database schema up to date")
    clients = commands.add_parser("clients", help="manage API clients").add_subparsers(
        dest="action", required=True
    )
    create = clients.add_parser("create", help="create a client and print its key once")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", choices=ALL_SCOPES, dest="scopes")
    create.add_argument("--json", action="store_true")
    listing = clients.add_parser("list", help="list clients")
    listing.add_argument("--json", action="store_true")
    disable = clients.add_parser("disable", help="disable a client and revoke its tokens")
    disable.add_argument("id")
    regenerate = clients.add_parser("regenerate-key", help="issue a new key, revoke the old")
    regenerate.add_argument("id")
    regenerate.add_argument("--json", action="store_true")
    return parser


def serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    # Checked here, once, so a bad file stops start-up with one line, not a traceback.
    load_tool_file(settings.tools_file)
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "relay.web.app:create_app",
        factory=True,
        host=args.host or settings.relay_host,
        port=args.port or settings.relay_port,
        workers=args.workers,
        log_config=log_config(settings.log_level, settings.log_format),
        access_log=False,  # Relay writes its own access log, without query strings
        server_header=False,
        proxy_headers=False,
    )


async def with_store(settings: Settings, work: Callable[[Store], Awaitable[None]]) -> None:
    async with open_store(settings, pool_size=2) as store:
        await work(store)


def print_json(value: Any) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def print_new_key(client: dict[str, Any], api_key: str, as_json: bool) -> None:
    if as_json:
        print_json({"client": client, "api_key": api_key})
        return
    print(f"client {client['id']} ({client['name']}), scopes: {' '.join(client['scopes'])}")
    print(f"API key (shown once, store it now): {api_key}")


async def run_clients(settings: Settings, args: argparse.Namespace, store: Store) -> None:
    service = await build_clients(settings, store, cache_ttl=0)
    try:
        await _clients_action(service, args)
    finally:
        await service.feed.stop()


async def _clients_action(service: ClientService, args: argparse.Namespace) -> None:
    if args.action == "create":
        created = await service.create(args.name, scopes=args.scopes)
        print_new_key(client_fields(created.client), created.api_key, args.json)
    elif args.action == "list":
        clients = [
            client_fields(c) for c in await service.list(active=None, limit=10_000, before=None)
        ]
        if args.json:
            print_json({"clients": clients})
        for c in [] if args.json else clients:
            state = "active" if c["active"] else "disabled"
            print(
                f"{c['id']}  {c['key_prefix']}  {state:<8}  {' '.join(c['scopes']):<24} {c['name']}"
            )
    elif args.action == "disable":
        await service.update(args.id, {"active": False})
        print(f"client {args.id} disabled; its tokens are revoked")
    else:
        renewed = await service.regenerate_key(args.id)
        print_new_key(client_fields(renewed.client), renewed.api_key, args.json)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"relay: {describe_error(exc)}", file=sys.stderr)
        return 2
    try:
        if args.command == "serve":
            serve(settings, args)
        elif args.command == "migrate":
            asyncio.run(with_store(settings, _report_migrations))
        else:
            asyncio.run(with_store(settings, lambda store: run_clients(settings, args, store)))
    except (StoreUnavailable, ToolFileError) as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 1
    except RelayError as exc:
        print(f"relay: {exc.message}", file=sys.stderr)
        return 1
    return 0


async def _report_migrations(store: Store) -> None:
    print("database schema is up to date")


if __name__ == "__main__":
    sys.exit(main())
