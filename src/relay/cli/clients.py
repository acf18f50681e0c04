"""`relay clients ...`: the admin API's client management, from the command line."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from relay.clients.service import ALL_SCOPES, ClientService, client_fields
from relay.config import check_rate_limit

MAX_TOKEN_TTL = 604_800  # as the admin API: a week
MAX_NAME_CHARS = 200


class BadArgument(Exception):
    """A flag's value Relay refuses (exit 2, as argparse does for its own checks)."""


def add_commands(commands: Any) -> None:
    """`relay clients <action>`, on the top-level parser's subcommands."""
    clients = commands.add_parser("clients", help="manage API clients").add_subparsers(
        dest="action", required=True
    )
    create = clients.add_parser("create", help="create a client and print its key once")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", choices=ALL_SCOPES, dest="scopes")
    create.add_argument("--json", action="store_true")
    listing = clients.add_parser("list", help="list clients")
    listing.add_argument("--json", action="store_true")
    for action, text in (
        ("show", "show one client"),
        ("enable", "enable a disabled client (its old tokens stay revoked)"),
        ("disable", "disable a client and revoke its tokens"),
        ("delete", "delete a client; its tokens stop working"),
        ("regenerate-key", "issue a new key, revoke the old"),
    ):
        parser = clients.add_parser(action, help=text)
        parser.add_argument("id")
        if action in ("show", "regenerate-key"):
            parser.add_argument("--json", action="store_true")
    update = clients.add_parser("update", help="change a client's name, scopes or limits")
    update.add_argument("id")
    update.add_argument("--name")
    update.add_argument(
        "--scope", action="append", choices=ALL_SCOPES, dest="scopes", help="repeat; replaces all"
    )
    update.add_argument("--rate-limit-default", metavar="RATE", help="e.g. 100/minute")
    update.add_argument("--rate-limit-chat", metavar="RATE", help="e.g. 10/minute")
    update.add_argument("--token-ttl", metavar="SECONDS", type=int)
    update.add_argument("--json", action="store_true")


def print_json(value: Any) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def print_new_key(client: dict[str, Any], api_key: str, as_json: bool) -> None:
    if as_json:
        print_json({"client": client, "api_key": api_key})
        return
    print(f"client {client['id']} ({client['name']}), scopes: {' '.join(client['scopes'])}")
    print(f"API key (shown once, store it now): {api_key}")


def print_client(client: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json({"client": client})
        return
    limits = client["rate_limits"]
    rows = {
        "id": client["id"],
        "name": client["name"],
        "state": "active" if client["active"] else "disabled",
        "scopes": " ".join(client["scopes"]),
        "key prefix": client["key_prefix"],
        "rate limits": ", ".join(f"{k} {v}" for k, v in limits.items()) or "the defaults",
        "token ttl": f"{client['token_ttl']} s" if client["token_ttl"] else "JWT_EXPIRY",
        "created": client["created_at"],
        "updated": client["updated_at"],
        "last used": client["last_used_at"] or "never",
    }
    for label, value in rows.items():
        print(f"{label + ':':<13}{value}")


def print_listing(clients: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json({"clients": clients})
        return
    for c in clients:
        state = "active" if c["active"] else "disabled"
        print(f"{c['id']}  {c['key_prefix']}  {state:<8}  {' '.join(c['scopes']):<24} {c['name']}")


async def update_changes(service: ClientService, args: argparse.Namespace) -> dict[str, Any]:
    """The fields the flags name, checked as the admin API checks them."""
    changes: dict[str, Any] = {}
    if args.name is not None:
        if not 1 <= len(args.name) <= MAX_NAME_CHARS or "\x00" in args.name:
            raise BadArgument(f"--name: expected 1 to {MAX_NAME_CHARS} characters")
        changes["name"] = args.name
    if args.scopes is not None:
        changes["scopes"] = args.scopes
    if args.token_ttl is not None:
        if not 1 <= args.token_ttl <= MAX_TOKEN_TTL:
            raise BadArgument(f"--token-ttl: expected 1 to {MAX_TOKEN_TTL} seconds")
        changes["token_ttl"] = args.token_ttl
    rates = {"default": args.rate_limit_default, "chat": args.rate_limit_chat}
    if any(rate is not None for rate in rates.values()):
        # One limit changed keeps the other: the stored limits are replaced whole.
        limits = dict((await service.get(args.id)).rate_limits)
        for kind, rate in rates.items():
            if rate is not None:
                try:
                    limits[kind] = check_rate_limit(rate)
                except ValueError as exc:
                    raise BadArgument(f"--rate-limit-{kind}: {exc}") from None
        changes["rate_limits"] = limits
    if not changes:
        raise BadArgument("nothing to change: give at least one of the update flags")
    return changes


async def run_action(service: ClientService, args: argparse.Namespace) -> None:
    action = args.action
    if action == "create":
        created = await service.create(args.name, scopes=args.scopes)
        print_new_key(client_fields(created.client), created.api_key, args.json)
    elif action == "list":
        listed = await service.list(active=None, limit=10_000, before=None)
        print_listing([client_fields(c) for c in listed], args.json)
    elif action == "show":
        print_client(client_fields(await service.get(args.id)), args.json)
    elif action in ("enable", "disable"):
        await service.update(args.id, {"active": action == "enable"})
        revoked = "; its tokens are revoked" if action == "disable" else ""
        print(f"client {args.id} {action}d{revoked}")
    elif action == "delete":
        await service.delete(args.id)
        print(f"client {args.id} deleted; its tokens stop working")
    elif action == "update":
        updated = await service.update(args.id, await update_changes(service, args))
        print_client(client_fields(updated), args.json)
    else:
        renewed = await service.regenerate_key(args.id)
        print_new_key(client_fields(renewed.client), renewed.api_key, args.json)
