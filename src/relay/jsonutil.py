"""JSON encoding: orjson for speed, the standard library for what orjson refuses.

orjson stops at 64-bit integers; client metadata may hold larger ones, and a
client's valid JSON must never turn into a 500.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
