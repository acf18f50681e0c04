"""`python main.py` starts Relay, as `relay serve` does."""

import sys

from relay.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
