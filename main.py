"""`python main.py` starts Relay, as `relay serve` does."""

import sys

try:
    from relay.cli import main
except ModuleNotFoundError as exc:
    # Run with a Python that lacks Relay or its dependencies (the system one, say):
    # say how to run it rather than show a traceback.
    print(
        f"relay: {sys.executable} cannot import {exc.name!r}: Relay runs from its own"
        " virtualenv: `make run` (sets up .venv), or `.venv/bin/python main.py` once it exists",
        file=sys.stderr,
    )
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
