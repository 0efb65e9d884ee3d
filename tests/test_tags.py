"""Tags (session-tracking codex, section 9): {kind, topics[0..2]}, kind from the
project's vocabulary when ``.directives`` gives one; clear refusals otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_server_heartbeat.domain.errors import ConfigError, InvalidInputError
from mcp_server_heartbeat.domain.tags import parse_tags
from mcp_server_heartbeat.host.config import Flags, resolve_config
from mcp_server_heartbeat.mcp.server import build_app
from mcp_server_heartbeat.runtime import open_runtime
from mcp_server_heartbeat.store.directory.store import DirectoryStore

KINDS = ("feature", "bugfix", "review")


def test_accepts_kind_and_two_topics() -> None:
    tags = parse_tags({"kind": "feature", "topics": ["auth", "review-loop"]}, KINDS)
    assert tags.model_dump() == {"kind": "feature", "topics": ["auth", "review-loop"]}
    assert parse_tags({}, KINDS).model_dump() == {"kind": None, "topics": []}
    assert parse_tags({"kind": "anything-kebab"}).kind == "anything-kebab"  # no vocabulary


@pytest.mark.parametrize(
    ("tags", "says"),
    [
        (["auth", "ui"], "tags must be an object like"),
        ("auth", "tags must be an object like"),
        ({"kind": "feature", "topic": ["auth"]}, "unknown keys ['topic']"),
        ({"kind": "feature", "topics": ["a", "b", "c"]}, "at most 2 topics"),
        ({"topics": "auth"}, "must be a list"),
        ({"topics": ["Auth"]}, "lowercase kebab-case"),
        ({"topics": ["review_loop"]}, "lowercase kebab-case"),
        ({"topics": ["a" * 21]}, "at most 20 characters"),
        ({"kind": "chore"}, "use one of feature, bugfix, review"),
        ({"kind": "Feature"}, "use one of feature, bugfix, review"),
    ],
)
def test_refusals_say_what_is_accepted(tags: Any, says: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_tags(tags, KINDS)
    assert says in str(caught.value)


def write_directives(root: Path, text: str) -> None:
    (root / ".ahrena").mkdir(exist_ok=True)
    (root / ".ahrena" / ".directives").write_text(text)


def test_vocabulary_comes_from_directives(tmp_path: Path) -> None:
    write_directives(tmp_path, "session_tracking:\n  tags:\n    kinds: [feature, bugfix, review]\n")
    config = resolve_config(Flags(root=str(tmp_path)), {}, tmp_path)
    assert config.tag_kinds.value == KINDS
    assert config.tag_kinds.source == "directives session_tracking.tags.kinds"
    assert config.describe()["tag_kinds"].value == KINDS


def test_no_vocabulary_by_default(tmp_path: Path) -> None:
    config = resolve_config(Flags(root=str(tmp_path)), {}, tmp_path)
    assert (config.tag_kinds.value, config.tag_kinds.source) == (None, "default")


@pytest.mark.parametrize(
    "text",
    [
        "session_tracking:\n  tags: [feature]\n",
        "session_tracking:\n  tags:\n    kinds: feature\n",
        "session_tracking:\n  tags:\n    kinds: []\n",
        "session_tracking:\n  tags:\n    kinds: [Feature]\n",
    ],
)
def test_bad_vocabulary_is_a_config_error(tmp_path: Path, text: str) -> None:
    write_directives(tmp_path, text)
    with pytest.raises(ConfigError, match=r"session_tracking\.tags"):
        resolve_config(Flags(root=str(tmp_path)), {}, tmp_path)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_heartbeat_tool_uses_the_vocabulary_and_explains_refusals(tmp_path: Path) -> None:
    write_directives(tmp_path, "session_tracking:\n  tags:\n    kinds: [feature, review]\n")
    runtime = open_runtime(Flags(root=str(tmp_path), session_id="s-tags"), {}, tmp_path)
    runtime.handle_signals = runtime.watch_parent = False
    async with Client(build_app(runtime)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        schema = tools["heartbeat"].input_schema["properties"]["tags"]
        assert "at most 2 topics" in schema["description"]
        ok = await client.call_tool(
            "heartbeat", {"tags": {"kind": "review", "topics": ["auth", "review-loop"]}}
        )
        assert not ok.is_error
        assert ok.structured_content is not None
        assert ok.structured_content["session"]["tags"] == {
            "kind": "review",
            "topics": ["auth", "review-loop"],
        }
        refusals = {
            "flat": ["auth"],
            "extra": {"kind": "review", "topics": [], "priority": "high"},
            "vocabulary": {"kind": "chore"},
        }
        texts = {}
        for name, tags in refusals.items():
            result = await client.call_tool("heartbeat", {"tags": tags})
            assert result.is_error, name
            texts[name] = result.content[0].text  # type: ignore[union-attr]
    assert 'tags must be an object like {"kind": "feature"' in texts["flat"]
    assert "only 'kind' and 'topics' are accepted" in texts["extra"]
    assert "use one of feature, review" in texts["vocabulary"]
    record = DirectoryStore(runtime.config.dir_path).read_session("s-tags")
    assert record is not None and record.tags is not None
    assert record.tags.model_dump() == {"kind": "review", "topics": ["auth", "review-loop"]}  # type: ignore[union-attr]
