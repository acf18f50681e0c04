"""What wrk measures: targets (a server and one endpoint), their request files, a preflight.

Spec lines are "METHOD<TAB>PATH<TAB>BODY" (see lua/load.lua). Every chat target,
the stub and the proxy included, gets byte-for-byte the same requests, and the
gateways get the same tokens as Relay, so the ratios compare servers, not payloads.

The preflight sends one request per target before any load and checks the
body: wrk only counts statuses, so a target answering 200 with the wrong body
(or a Relay that stored nothing) would otherwise pass unnoticed, and a
benchmark of error pages is worthless.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.servers import Servers

CHAT_MESSAGES = (
    "Hello Relay, how are you today?",
    "Summarise the last meeting in three bullet points.",
    "What is the capital of France?",
    "Write a haiku about load balancers.",
)
CHAT = "POST /v1/chat"
TOOLS = "GET /v1/tools"
HISTORY = "GET /v1/history"
AUTH = "POST /auth/token"
STUB_REPLY = "Hello from the stub backend."


@dataclass(frozen=True)
class Target:
    """One thing wrk measures: a server (name) and one endpoint on it."""

    name: str
    endpoint: str
    url: str
    spec: Path
    tokens: Path | None

    @property
    def key(self) -> str:
        """The label `<name> <endpoint>` of the target in rows and results."""
        return f"{self.name} {self.endpoint}"


class PreflightFailed(RuntimeError):
    """A target answered something other than what the benchmark expects."""


def _line(method: str, path: str, body: object | None = None) -> str:
    text = json.dumps(body, separators=(",", ":")) if body is not None else ""
    return f"{method}\t{path}\t{text}"


def spec_lines(endpoint: str) -> list[str]:
    """The requests wrk rotates through for CHAT, TOOLS or HISTORY."""
    if endpoint == CHAT:
        return [_line("POST", "/v1/chat", {"message": m}) for m in CHAT_MESSAGES]
    if endpoint == TOOLS:
        return [_line("GET", "/v1/tools")]
    if endpoint == HISTORY:
        return [_line("GET", "/v1/history")]
    raise ValueError(endpoint)


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write one line per item and return `path`."""
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def write_specs(directory: Path) -> dict[str, Path]:
    """One spec file per endpoint, plus `mixed` (chat, tools, history) for the memory phase."""
    specs = {
        e: write_lines(
            directory / f"{e.split()[1].strip('/').replace('/', '_')}.spec", spec_lines(e)
        )
        for e in (CHAT, TOOLS, HISTORY)
    }
    mixed = spec_lines(CHAT) + spec_lines(TOOLS) * 2 + spec_lines(HISTORY) * 2
    specs["mixed"] = write_lines(directory / "mixed.spec", mixed)
    return specs


def write_auth_spec(path: Path, api_keys: tuple[str, ...]) -> Path:
    """Token exchanges, one line per API key."""
    return write_lines(path, [_line("POST", "/auth/token", {"api_key": k}) for k in api_keys])


def build_targets(servers: Servers, specs: dict[str, Path], tmp: Path) -> list[Target]:
    """Every target the servers allow, in measuring order: baselines, then each Relay.

    Chat comes before history on each Relay, so history has stored messages to show.
    """
    sqlite = servers.relays.get("relay-sqlite")
    shared = write_lines(tmp / "naive.tokens", list(sqlite.tokens)) if sqlite else None
    out = [
        Target("stub", CHAT, servers.stub.url, specs[CHAT], shared),
        Target("proxy", CHAT, servers.stub.proxy_url, specs[CHAT], shared),
    ]
    for ceiling in ("ceiling", "ceiling-lean"):
        if ceiling in servers.baselines:
            out.append(Target(ceiling, TOOLS, servers.baselines[ceiling], specs[TOOLS], shared))
    if "naive" in servers.baselines:
        out.append(Target("naive", CHAT, servers.baselines["naive"], specs[CHAT], shared))
    for name, relay in servers.relays.items():
        tokens = write_lines(tmp / f"{name}.tokens", list(relay.tokens))
        out.extend(Target(name, e, relay.url, specs[e], tokens) for e in (CHAT, TOOLS, HISTORY))
    return out


def auth_targets(servers: Servers, specs: dict[str, Path], tmp: Path) -> tuple[Target, Target]:
    """relay-sqlite's tools target and its token-exchange target, for the auth phase."""
    relay = servers.relays["relay-sqlite"]
    tokens = write_lines(tmp / "auth-phase.tokens", list(relay.tokens))
    tools = Target("relay-sqlite", TOOLS, relay.url, specs[TOOLS], tokens)
    spec = write_auth_spec(tmp / "auth.spec", relay.api_keys)
    return tools, Target("relay-sqlite", AUTH, relay.url, spec, None)


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


def _problem(target: Target, answer: Any) -> str | None:
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
    """Send each target its first request, in order; raise PreflightFailed on a wrong answer."""
    for target in targets:
        problem = _problem(target, _fetch(target))
        if problem is not None:
            raise PreflightFailed(f"{target.key}: {problem}")
