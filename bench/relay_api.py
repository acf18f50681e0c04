"""The only place bench imports Relay's code: every name it uses, imported once.

`python -m bench run` never imports Relay itself (only the baselines and
`inprocess` do), so the harness measures whatever code the Relay processes it
starts load.
"""

from __future__ import annotations

from relay.config import Settings
from relay.observability.logging import log_config
from relay.web.app import YOUNG_COLLECTION_THRESHOLD, create_app
from relay.web.routing import Route

__all__ = ["YOUNG_COLLECTION_THRESHOLD", "Route", "Settings", "create_app", "log_config"]
