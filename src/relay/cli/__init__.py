"""The command line: relay serve | doctor | migrate | clients ..."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence

from relay import __version__
from relay.cli import clients
from relay.cli.checks import StartupFailure, load_settings, open_database
from relay.cli.serve import doctor, serve
from relay.config import Settings
from relay.container import build_clients
from relay.errors import RelayError
from relay.storage import Store, StoreUnavailable


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description=__doc__)
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "start Relay"), ("doctor", "check what serve needs")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--host")
        command.add_argument("--port", type=int)
        if name == "serve":
            command.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="bring the database schema up to date")
    clients.add_commands(commands)
    return parser


async def with_store(settings: Settings, work: Callable[[Store], Awaitable[None]]) -> None:
    store, _ = await open_database(settings, pool_size=2)
    try:
        await work(store)
    finally:
        await store.close()


async def migrate(settings: Settings) -> None:
    store, applied = await open_database(settings, pool_size=1)
    await store.close()
    if applied:
        print(f"applied {len(applied)} migrations: {', '.join(applied)}")
    else:
        print("database schema is up to date (nothing to apply)")


async def run_clients(settings: Settings, args: argparse.Namespace, store: Store) -> None:
    service = await build_clients(settings, store, cache_ttl=0)
    try:
        await clients.run_action(service, args)
    finally:
        await service.feed.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "doctor":
        return doctor(args)
    try:
        settings = load_settings()
        if args.command == "serve":
            serve(settings, args)
        elif args.command == "migrate":
            asyncio.run(migrate(settings))
        else:
            asyncio.run(with_store(settings, lambda store: run_clients(settings, args, store)))
    except StartupFailure as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return exc.exit_code
    except clients.BadArgument as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 3
    except RelayError as exc:
        print(f"relay: {exc.message}", file=sys.stderr)
        return 1
    return 0
