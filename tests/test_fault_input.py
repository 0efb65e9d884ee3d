"""Fault 5: bad input, fuzzed — every tool's arguments, and malformed JSON-RPC.

Property-based (hypothesis, 1,000 examples per tool) through the real MCP
layer (the SDK's in-memory client over ``app.build_app``): ids with ``/``,
``..``, NUL, control characters, unicode look-alikes, 10,000 characters; an
``activity`` of 1 MB; wrong types; extra fields. Each call is either accepted
and stored within the documented limits, or refused with a message naming the
field (and the rule). No file is ever created outside the heartbeat directory.
Malformed JSON-RPC lines on a real server's stdin get protocol errors and the
server keeps serving.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.domain.validation import ID_PATTERN, LABEL_PATTERN, MAX_LABEL_CHARS
from mcp_server_heartbeat.host.config import Flags, resolve_config
from mcp_server_heartbeat.host.identity import detect_identity
from mcp_server_heartbeat.mcp import server as app_module
from mcp_server_heartbeat.runtime import Runtime
from mcp_server_heartbeat.session.heartbeat import HeartbeatMonitor
from mcp_server_heartbeat.session.service import ROLES, SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from stdio_client import StdioServer

pytestmark = pytest.mark.slow

EXAMPLES = 1000
ID_RE = re.compile(ID_PATTERN)
LABEL_RE = re.compile(LABEL_PATTERN)
PARAMS = {
    "heartbeat": {"activity", "role", "tags"},
    "claim_plan": {"plan_id", "force"},
    "release": {"plan_id", "reason", "fencing_token"},
    "list_sessions": {"status", "plan_id", "branch", "include_ended"},
    "session_info": set(),
}
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Harness:
    """One in-memory server over a temp project, driven from sync hypothesis tests."""

    portal: BlockingPortal
    client: Client
    tree: Path
    directory: Path
    store: DirectoryStore
    session_id: str

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        return self.portal.call(self.client.call_tool, tool, arguments)


def _outside(base: Path, directory: Path) -> set[str]:
    """Every path under ``base`` that is not inside ``directory``."""
    return {
        str(p.relative_to(base))
        for p in base.rglob("*")
        if p != directory and directory not in p.parents
    }


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tree = tmp_path_factory.mktemp("fuzz")
    root = tree / "project"
    root.mkdir()
    config = resolve_config(Flags(root=str(root), dir="hb"), {}, root, find_repo=lambda _: None)
    store = DirectoryStore(config.dir_path)
    store.prepare()
    service = SessionService(store, detect_identity("fuzzer", {}, root), Thresholds(), 30.0)
    service.start()
    runtime = Runtime(
        config=config,
        service=service,
        monitor=HeartbeatMonitor(),
        handle_signals=False,
        watch_parent=False,
    )
    app = app_module.build_app(runtime)
    outside_before = _outside(tree, config.dir_path)
    with (
        start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(Client(app)) as client,
    ):
        yield Harness(portal, client, tree, config.dir_path, store, "fuzzer")
    # Invariant 4: nothing was created (or removed) outside the heartbeat directory.
    assert _outside(tree, config.dir_path) == outside_before


# -- strategies -------------------------------------------------------------------

LOOKALIKES = ["plаn", "ｐlan", "pl\u200ban", "p\u0301lan", "043\u2024x", "ﬁle"]  # noqa: RUF001
hostile_ids = st.one_of(
    st.sampled_from(["..", ".", "../x", "a/b", "/etc/passwd", "a\x00b", "-x", ".hidden", ""]),
    st.sampled_from(LOOKALIKES),
    st.text(min_size=1, max_size=20).map(lambda t: t + "/" + t),
    st.text(alphabet=st.characters(max_codepoint=31), min_size=1, max_size=5).map(
        lambda t: "a" + t
    ),
    st.integers(min_value=129, max_value=10_000).map(lambda n: "p" * n),
    st.text(max_size=40),
)
valid_ids = st.from_regex(ID_RE, fullmatch=True).filter(lambda s: len(s) <= 128)
wrong_types = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has neither: sent as null
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
ids = st.one_of(valid_ids, hostile_ids, wrong_types)


class _Big(str):
    """A 1 MB string that prints short in hypothesis reports."""

    def __repr__(self) -> str:
        return f"<{len(self)} chars>"


labels = st.one_of(
    st.text(max_size=250),
    st.just(_Big("x" * (1024 * 1024))),  # 1 MB
    st.text(alphabet=st.characters(max_codepoint=31), min_size=1, max_size=5),
    st.from_regex(r"[a-z-]{1,30}:step[0-9]", fullmatch=True),
    wrong_types,
)
extras = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda k: k not in set().union(*PARAMS.values())),
    st.one_of(st.none(), st.integers(), st.text(max_size=5)),
    max_size=2,
)


def _optional(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), values.map(lambda v: {name: v}))


def _args(*parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(*parts, st.one_of(st.just({}), extras)).map(
        lambda ds: {k: v for d in ds for k, v in d.items()}
    )


# -- the oracle -------------------------------------------------------------------


def _check(h: Harness, tool: str, args: dict[str, Any], result: Any) -> None:
    text = result.content[0].text if result.content else ""
    unknown = set(args) - PARAMS[tool]
    if result.is_error:
        named = (set(args) | {"plan_id"}) & {w for w in re.split(r"[^A-Za-z0-9_]+", text) if w}
        named |= {k for k in args if k in text or repr(k) in text}
        assert named, f"{tool}{args!r}: error does not name a field: {text[:300]}"
        assert len(text) > 30, text
        if unknown:
            assert "unknown argument" in text, text
        return
    assert not unknown, f"{tool} accepted unknown arguments {unknown}"
    record = h.store.read_session(h.session_id)
    assert record is not None
    if record.last_activity is not None:
        assert len(record.last_activity) <= MAX_LABEL_CHARS
        assert LABEL_RE.fullmatch(record.last_activity)
    assert record.role is None or record.role in ROLES
    if record.plan_id is not None:
        assert ID_RE.fullmatch(record.plan_id)
        assert (h.directory / "claims" / f"{record.plan_id}.json").is_file()
    for name in os.listdir(h.directory):
        assert not name.endswith(".tmp"), name


def _must_refuse_bad_id(args: dict[str, Any], key: str, result: Any) -> None:
    value = args.get(key)
    if (
        key in args
        and value is not None
        and not (isinstance(value, str) and ID_RE.fullmatch(value))
    ):
        assert result.is_error, f"{key}={value!r} was accepted"


@FUZZ
@given(
    args=_args(
        _optional("activity", st.one_of(st.none(), labels)),
        _optional("role", st.one_of(st.sampled_from([*ROLES, None]), labels)),
        _optional(
            "tags",
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "kind": st.one_of(st.from_regex(r"[a-z]{1,8}", fullmatch=True), labels),
                        "topics": st.lists(st.one_of(st.sampled_from(["auth", "x-y"]), labels)),
                    },
                ),
                wrong_types,
            ),
        ),
    )
)
def test_heartbeat_arguments(harness: Harness, args: dict[str, Any]) -> None:
    result = harness.call("heartbeat", args)
    _check(harness, "heartbeat", args, result)
    activity = args.get("activity")
    if isinstance(activity, str) and len(activity) > MAX_LABEL_CHARS:
        assert result.is_error
        if set(args) == {"activity"}:
            assert "activity" in result.content[0].text
            assert str(MAX_LABEL_CHARS) in result.content[0].text  # the rule


@FUZZ
@given(
    args=_args(
        st.one_of(st.just({}), ids.map(lambda v: {"plan_id": v})),
        _optional("force", st.one_of(st.booleans(), wrong_types, labels)),
    )
)
def test_claim_plan_arguments(harness: Harness, args: dict[str, Any]) -> None:
    result = harness.call("claim_plan", args)
    _check(harness, "claim_plan", args, result)
    _must_refuse_bad_id(args, "plan_id", result)
    if "plan_id" not in args:
        assert result.is_error
    plan = args.get("plan_id")
    if (
        isinstance(plan, str)
        and ID_RE.fullmatch(plan)
        and isinstance(args.get("force", False), bool)
        and set(args) <= PARAMS["claim_plan"]
    ):
        assert not result.is_error, result.content[0].text
        assert result.structured_content["outcome"] in ("claimed", "already_yours")
    if not result.is_error:
        released = harness.call("release", {})
        assert released.structured_content["outcome"] == "released"


@FUZZ
@given(
    args=_args(
        _optional("plan_id", st.one_of(st.none(), ids)),
        _optional("reason", st.one_of(st.none(), labels)),
        _optional(
            "fencing_token",
            st.one_of(st.none(), st.integers(min_value=-(2**70), max_value=2**70), wrong_types),
        ),
    )
)
def test_release_arguments(harness: Harness, args: dict[str, Any]) -> None:
    held = harness.call("claim_plan", {"plan_id": "held-plan"})
    assert held.structured_content["claimed"]
    result = harness.call("release", args)
    _check(harness, "release", args, result)
    _must_refuse_bad_id(args, "plan_id", result)
    token = args.get("fencing_token")
    if isinstance(token, int) and not isinstance(token, bool) and token < 1:
        assert result.is_error
        if set(args) == {"fencing_token"}:
            assert "accepted: a whole number >= 1" in result.content[0].text
    if not result.is_error and result.structured_content["outcome"] == "stale_token":
        ledger = harness.store.read_claim("held-plan")
        assert ledger is not None and ledger.holder == harness.session_id  # nothing changed
    harness.call("release", {})


@FUZZ
@given(
    args=_args(
        _optional("status", st.one_of(st.none(), st.sampled_from(["active", "ended"]), labels)),
        _optional("plan_id", st.one_of(st.none(), ids)),
        _optional("branch", st.one_of(st.none(), labels)),
        _optional("include_ended", st.one_of(st.booleans(), wrong_types)),
    )
)
def test_list_sessions_arguments(harness: Harness, args: dict[str, Any]) -> None:
    result = harness.call("list_sessions", args)
    _check(harness, "list_sessions", args, result)
    _must_refuse_bad_id(args, "plan_id", result)
    if not result.is_error:
        assert result.structured_content["unreadable"] == []


@FUZZ
@given(args=_args())
def test_session_info_arguments(harness: Harness, args: dict[str, Any]) -> None:
    result = harness.call("session_info", args)
    _check(harness, "session_info", args, result)


def test_tools_declare_that_unknown_arguments_are_refused(harness: Harness) -> None:
    tools = harness.portal.call(harness.client.list_tools).tools
    assert {t.name for t in tools} >= set(PARAMS)
    for tool in tools:
        if tool.name in PARAMS:
            assert tool.input_schema.get("additionalProperties") is False, tool.name


MALFORMED: list[tuple[bytes, int]] = [
    (b"this is not json", -32700),
    (b'{"jsonrpc": "2.0", "id": 7', -32700),
    (b"\xff\xfe\x00\x01binary", -32700),
    (b"[" * 100_000, -32700),
    (b"x" * (1024 * 1024), -32700),
    (b'{"jsonrpc": "2.0", "id": 7}', -32600),
    (b'{"jsonrpc": "1.0", "id": 8, "method": "tools/list"}', -32600),
    (b"42", -32600),
    (b"[]", -32600),
]


def test_malformed_json_rpc_lines_get_protocol_errors_and_serving_goes_on(
    tmp_path: Path,
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    server = StdioServer(root, "--session-id", "wire")
    try:
        for line, code in MALFORMED[:3]:  # before the handshake, too
            server.send(line)
            reply = server.receive(None)  # type: ignore[arg-type]
            assert reply["error"]["code"] == code, (line[:40], reply)
        server.initialize()
        for line, code in MALFORMED:
            server.send(line)
            reply = server.receive(None)  # type: ignore[arg-type]
            assert reply["id"] is None and reply["error"]["code"] == code, (line[:40], reply)
            result = server.call("claim_plan", plan_id="after-garbage")
            assert result["structuredContent"]["claimed"] is True
        bad_args = server.request(
            "tools/call", {"name": "claim_plan", "arguments": "not-an-object"}
        )
        assert bad_args["error"]["code"] == -32602
        assert server.call("session_info")["structuredContent"]["tracking_enabled"] is True
        server.close_stdin()
        assert server.wait() == 0
        assert "Traceback" not in server.stderr()
    finally:
        server.stop()
    record = json.loads((root / ".ahrena/workflow/sessions/wire.json").read_text())
    assert record["end_reason"] == "disconnect"
