"""The only place bench imports Relay's code: every name it uses, imported once.

Relay's modules move as it is redesigned; keeping the imports here means a
move is one edit, and `python -m bench run` never imports Relay itself (only
the baselines and `inprocess` do), so the harness measures whatever code the
Relay processes it starts load.
"""

from __future__ import annotations

from relay.app import YOUNG_COLLECTION_THRESHOLD, create_app
from relay.config import Settings
from relay.observability.logging import log_config
from relay.routes.lean import LeanRoute

__all__ = ["YOUNG_COLLECTION_THRESHOLD", "LeanRoute", "Settings", "create_app", "log_config"]
