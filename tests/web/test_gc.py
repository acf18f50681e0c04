"""What start-up built stays out of the garbage collector's passes while Relay runs."""

from __future__ import annotations

import gc
from collections.abc import Callable

from relay.config import Settings
from relay.web.app import YOUNG_COLLECTION_THRESHOLD
from tests.conftest import StartRelay


async def test_collector_skips_startup_objects_while_running_and_is_restored_at_stop(
    make_settings: Callable[..., Settings], start_relay: StartRelay
) -> None:
    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    async with start_relay(make_settings()) as relay:
        assert gc.get_freeze_count() > 10_000  # modules, routes, models: tens of thousands
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
        assert (await relay.client.get("/health")).status_code == 200
        gc.collect()  # a full pass still runs, over what requests left behind
    assert gc.get_freeze_count() == 0  # a stopped app can be freed
    assert gc.get_threshold() == thresholds
