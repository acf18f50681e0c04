"""The tool list: the registry (TOOLS_FILE) merged with the backend's own tools."""

from __future__ import annotations

import time
from dataclasses import dataclass

from relay.backends.base import Backend, ToolSpec


@dataclass(frozen=True, eq=False)
class ToolList:
    """One refresh of the list. Compared and hashed by identity: a new list is a new object,
    so what is derived from it (its encoded body, say) can be cached per list."""

    tools: tuple[ToolSpec, ...]


class ToolService:
    """Lists tools; the backend's list is cached for `ttl` seconds, as it rarely changes."""

    def __init__(self, backend: Backend, registry: list[ToolSpec], *, ttl: float = 30.0) -> None:
        self.backend = backend
        self.registry = registry
        self.ttl = ttl
        self._cached: ToolList | None = None
        self._cached_at = 0.0

    async def list(self) -> ToolList:
        """The same ToolList object until the cache expires; the registry wins on a name."""
        if self._cached is not None and time.monotonic() - self._cached_at < self.ttl:
            return self._cached
        merged = {tool.name: tool for tool in await self.backend.tools()}
        merged.update({tool.name: tool for tool in self.registry})
        self._cached = ToolList(tuple(merged.values()))
        self._cached_at = time.monotonic()
        return self._cached
