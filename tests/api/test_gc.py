"""What start-up built stays out of the garbage collector's passes while Relay runs."""

from __future__ import annotations

import gc
from collections.abc import Callable

from relay.config import Settings
from tests.conftest import StartRelay


async def test_startup_objects_are_frozen_while_running_and_thawed_at_stop(
    make_settings: Callable[..., Settings], start_relay: StartRelay
) -> None:
    assert gc.get_freeze_count() == 0
    async with start_relay(make_settings()) as relay:
        assert gc.get_freeze_count() > 10_000  # modules, routes, models: tens of thousands
        assert (await relay.client.get("/health")).status_code == 200
        gc.collect()  # a full pass still runs, over what requests left behind
    assert gc.get_freeze_count() == 0  # a stopped app can be freed
