"""GET /v1/tools and the TOOLS_FILE registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay.backends.base import ToolSpec
from relay.backends.echo import EchoBackend
from relay.config import Settings
from relay.tools.registry import ToolFileError, load_tool_file
from relay.web.app import create_app
from tests.conftest import Running, StartRelay

WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
}
SEARCH: dict[str, Any] = {
    "name": "web-search_2",
    "description": "Search the web. Returns the top results.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
}


async def list_tools(running: Running) -> list[dict[str, Any]]:
    response = await running.client.get("/v1/tools", headers=await running.bearer("tools"))
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"tools"}
    tools: list[dict[str, Any]] = response.json()["tools"]
    return tools


async def test_json_and_yaml_registries_are_served(
    start_relay: StartRelay, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    as_json = tmp_path / "tools.json"
    as_json.write_text(json.dumps({"tools": [WEATHER, SEARCH]}), encoding="utf-8")
    async with start_relay(make_settings(tools_file=as_json)) as running:
        assert await list_tools(running) == [WEATHER, SEARCH]
    as_yaml = tmp_path / "tools.yaml"
    as_yaml.write_text(yaml.safe_dump([SEARCH, WEATHER], sort_keys=False), encoding="utf-8")
    async with start_relay(make_settings(tools_file=as_yaml)) as running:
        assert await list_tools(running) == [SEARCH, WEATHER]


class ToolfulEcho(EchoBackend):
    async def tools(self) -> list[ToolSpec]:
        return [
            ToolSpec("calculator", "Adds numbers.", {"type": "object"}),
            ToolSpec("get_weather", "The backend's own weather.", {"type": "object"}),
        ]


async def test_registry_merges_with_the_backends_tools(
    start_relay: StartRelay, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps([WEATHER]), encoding="utf-8")
    async with start_relay(make_settings(tools_file=path)) as running:
        running.relay.tools.backend = ToolfulEcho()
        tools = {tool["name"]: tool for tool in await list_tools(running)}
        assert set(tools) == {"calculator", "get_weather"}
        assert tools["get_weather"] == WEATHER  # the registry wins a name clash
        assert tools["calculator"]["description"] == "Adds numbers."


async def test_no_registry_and_scopes(relay: Running) -> None:
    assert await list_tools(relay) == []  # echo has none
    response = await relay.client.get("/v1/tools", headers=await relay.bearer("chat", "history"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert (await relay.client.get("/v1/tools")).status_code == 401


def test_load_tool_file_reads_json_and_yaml(tmp_path: Path) -> None:
    as_json = tmp_path / "tools.json"
    as_json.write_text(json.dumps([WEATHER]), encoding="utf-8")
    as_yaml = tmp_path / "tools.yml"
    as_yaml.write_text(yaml.safe_dump({"tools": [WEATHER]}), encoding="utf-8")
    expected = [ToolSpec(WEATHER["name"], WEATHER["description"], WEATHER["input_schema"])]
    assert load_tool_file(as_json) == expected
    assert load_tool_file(as_yaml) == expected
    assert load_tool_file(None) == []
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    assert load_tool_file(empty) == []


def with_changes(**changes: Any) -> dict[str, Any]:
    tool = {**WEATHER, **changes}
    return {k: v for k, v in tool.items() if v is not None}


INVALID: dict[str, Any] = {
    "bad name": [with_changes(name="get weather!")],
    "empty name": [with_changes(name="")],
    "long name": [with_changes(name="x" * 65)],
    "missing input_schema": [with_changes(input_schema=None)],
    "missing description": [with_changes(description=None)],
    "unknown field": [with_changes(color="red")],
    "duplicate names": [WEATHER, with_changes(description="Another one.")],
    "array schema": [with_changes(input_schema={"type": "array"})],
    "schema without type": [with_changes(input_schema={"properties": {}})],
    "schema not an object": [with_changes(input_schema="object")],
    "not a list": {"name": "get_weather"},
    "a list of strings": ["get_weather"],
    "a bare string": "get_weather",
}


@pytest.mark.parametrize("case", sorted(INVALID))
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_invalid_registries_raise_naming_the_file(tmp_path: Path, case: str, suffix: str) -> None:
    path = tmp_path / f"tools{suffix}"
    data = INVALID[case]
    path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
    with pytest.raises(ToolFileError) as raised:
        load_tool_file(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("missing.json", None),
        ("folder.yaml", "dir"),
        ("broken.json", b'[{"name": "x",'),
        ("broken.yaml", b"tools: [unclosed\n  - {"),
        ("latin1.yaml", b"- name: caf\xe9\n"),
    ],
)
def test_unreadable_registries_raise_naming_the_file(
    tmp_path: Path, name: str, content: bytes | str | None
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ToolFileError) as raised:
        load_tool_file(path)
    assert str(path) in str(raised.value)


async def test_invalid_registry_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps([WEATHER, WEATHER]), encoding="utf-8")
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path / 'relay.db'}",
        tools_file=path,
    )
    app = create_app(settings)
    with pytest.raises(ToolFileError, match="unique"):
        async with app.router.lifespan_context(app):
            pass
