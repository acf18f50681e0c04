"""One request per target before any load: a benchmark of error pages is worthless.

wrk only counts statuses, so a target that answers 200 with the wrong body (or
a Relay that stored nothing) would pass unnoticed; this checks the bodies once.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from bench.workloads import CHAT, HISTORY, TOOLS, Target

STUB_REPLY = "Hello from the stub backend."


class PreflightFailed(RuntimeError):
    """A target answered something other than what the benchmark expects."""


def _first_request(target: Target) -> urllib.request.Request:
    method, path, body = target.spec.read_text().splitlines()[0].split("\t")
    headers = {"Content-Type": "application/json"} if body else {}
    if target.tokens is not None:
        headers["Authorization"] = "Bearer " + target.tokens.read_text().split()[0]
    data = body.encode() if body else None
    return urllib.request.Request(target.url + path, data=data, headers=headers, method=method)


def _fetch(target: Target) -> Any:
    try:
        with urllib.request.urlopen(_first_request(target), timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise PreflightFailed(f"{target.key}: HTTP {exc.code}: {detail}") from exc


def _check(target: Target, answer: Any) -> str | None:
    """None if the answer has the expected shape, else what is wrong with it."""
    if target.endpoint == CHAT:
        content = answer.get("message", {}).get("content")
        return None if content == STUB_REPLY else f"reply content {content!r}"
    if target.endpoint == TOOLS:
        return None if isinstance(answer.get("tools"), list) else "no tools list"
    if target.endpoint == HISTORY:
        messages = answer.get("messages")
        return None if messages else "no stored messages after a chat"
    return None


def preflight(targets: list[Target]) -> None:
    """Chat targets come before history ones, so history has something to show."""
    for target in targets:
        problem = _check(target, _fetch(target))
        if problem is not None:
            raise PreflightFailed(f"{target.key}: {problem}")
