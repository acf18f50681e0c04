"""The request files wrk rotates through, and the targets that use them.

Spec lines are "METHOD<TAB>PATH<TAB>BODY" (see lua/load.lua). Every chat target,
the stub and the proxy included, gets byte-for-byte the same requests, so the
ratios compare servers, not payloads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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
        return f"{self.name} {self.endpoint}"


def _line(method: str, path: str, body: object | None = None) -> str:
    text = json.dumps(body, separators=(",", ":")) if body is not None else ""
    return f"{method}\t{path}\t{text}"


def spec_lines(endpoint: str) -> list[str]:
    if endpoint == CHAT:
        return [_line("POST", "/v1/chat", {"message": m}) for m in CHAT_MESSAGES]
    if endpoint == TOOLS:
        return [_line("GET", "/v1/tools")]
    if endpoint == HISTORY:
        return [_line("GET", "/v1/history")]
    raise ValueError(endpoint)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def write_specs(directory: Path) -> dict[str, Path]:
    """One spec file per endpoint, plus `mixed` (chat, tools, history) for the memory run."""
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
    return write_lines(path, [_line("POST", "/auth/token", {"api_key": k}) for k in api_keys])
