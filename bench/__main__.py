"""`python -m bench [COMMAND] [ARGS]`: the benchmark's one entry point.

Run it from the repository root: `bench` and `tests.support` import from there.
  run (default)  Relay against the stub, a proxy hop and the baselines (`make bench`)
  cost           CPU time per request of each server under wrk load
  inprocess      CPU time per request of one ASGI app called directly, no server
  profile        a py-spy profile of one Relay endpoint under wrk load
  load           mixed requests against a real Relay on PostgreSQL and Redis (`make load`)
Settings beyond these arguments come from the environment (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import sys

INPROCESS_TARGETS = (
    "relay-tools",
    "relay-chat",
    "relay-history",
    "ceiling",
    "ceiling-lean",
    "naive",
)


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand, `run` when none is given."""
    top = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "Relay's benchmark").splitlines()[0]
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="the benchmark of issue 5 (the default)")
    cost = commands.add_parser("cost", help="CPU time per request under wrk load")
    cost.add_argument("seconds", type=int, nargs="?", default=5, help="per measurement")
    cost.add_argument("rounds", type=int, nargs="?", default=3)
    inprocess = commands.add_parser("inprocess", help="CPU time per request, no server")
    inprocess.add_argument("target", choices=INPROCESS_TARGETS)
    inprocess.add_argument("requests", type=int, nargs="?", default=4000)
    inprocess.add_argument("concurrency", type=int, nargs="?", default=16)
    profile = commands.add_parser("profile", help="py-spy profile of one Relay endpoint")
    profile.add_argument(
        "endpoint", choices=("chat", "tools", "history"), nargs="?", default="chat"
    )
    profile.add_argument("store", choices=("sqlite", "postgres"), nargs="?", default="sqlite")
    profile.add_argument("seconds", type=int, nargs="?", default=15)
    commands.add_parser("load", help="mixed requests against a real Relay (PostgreSQL, Redis)")
    return top


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the command's module; its return value is the exit status.

    Each command imports only its own module: `inprocess` imports Relay's code
    into this process, which the others leave to the servers they start.
    """
    args = parser().parse_args(argv)
    command = args.command or "run"
    if command == "run":
        from bench import run

        return run.main()
    if command == "cost":
        from bench import cost

        return cost.main(args.seconds, args.rounds)
    if command == "inprocess":
        from bench import inprocess

        return inprocess.main(args.target, args.requests, args.concurrency)
    if command == "profile":
        from bench import profile

        return profile.main(args.endpoint, args.store, args.seconds)
    from bench import load

    return load.main()


if __name__ == "__main__":
    sys.exit(main())
