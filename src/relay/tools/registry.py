"""The tool registry: TOOLS_FILE, read and validated once at start-up.

A bad file stops Relay with one clear line instead of failing requests later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from relay.backends.base import ToolSpec


class ToolFileError(Exception):
    """TOOLS_FILE is missing, unreadable or invalid; the message says which and where."""


class _ToolEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = Field(min_length=1, max_length=4096)
    input_schema: dict[str, Any]


_entries = TypeAdapter(list[_ToolEntry])


def load_tool_file(path: Path | None) -> list[ToolSpec]:
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8")
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ToolFileError(f"TOOLS_FILE {path}: cannot read it ({type(exc).__name__})") from exc
    if isinstance(data, dict) and "tools" in data:
        data = data["tools"]
    try:
        entries = _entries.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ToolFileError(f"TOOLS_FILE {path}: {where}: {first['msg']}") from exc
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ToolFileError(f"TOOLS_FILE {path}: tool names must be unique")
    if any(e.input_schema.get("type") != "object" for e in entries):
        raise ToolFileError(f"TOOLS_FILE {path}: each input_schema must have type 'object'")
    return [ToolSpec(e.name, e.description, e.input_schema) for e in entries]
