"""`python -m relay.cli`: the `relay` command."""

import sys

from relay.cli import main

sys.exit(main())
