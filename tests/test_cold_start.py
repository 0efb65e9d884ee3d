"""What a server's start does before it can answer ``initialize``, and what it
leaves for later: each case runs the console script's entry point with an MCP
client's command line in a fresh interpreter, up to the moment it would serve
stdio, and reports what was loaded and built by then."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from mcp_server_heartbeat.domain import models

PROBE = r"""
import gc, json, sys
sys.argv = ["mcp-server-heartbeat", *ARGV]
import anyio  # the server's last step, anyio.run(serve_stdio, app), becomes this report

run = anyio.run

def report(serve_stdio, app):
    collector = {
        "enabled": gc.isenabled(),
        "frozen": gc.get_freeze_count(),
        "collections": [
            generation["collections"] - earlier
            for generation, earlier in zip(gc.get_stats(), BEFORE)
        ],
    }
    from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
    from pydantic import BaseModel
    from mcp_server_heartbeat.domain import models
    from mcp_server_heartbeat.mcp.strict import VerbatimMetadata

    found = {
        "serves": serve_stdio.__module__ + "." + serve_stdio.__name__,
        "modules": sorted(sys.modules),
        "built": sorted(
            name
            for name, value in vars(models).items()
            if isinstance(value, type)
            and issubclass(value, BaseModel)
            and value is not BaseModel
            and value.__pydantic_complete__
        ),
        "argument_models": sorted(c.__name__ for c in ArgModelBase.__subclasses__()),
        "metadata_built": VerbatimMetadata.__pydantic_complete__,
        "tools": sorted(tool.name for tool in run(app.list_tools)),
        "gc": collector,
    }
    print("FOUND:" + json.dumps(found), file=sys.stderr)

anyio.run = report
BEFORE = [generation["collections"] for generation in gc.get_stats()]
import mcp_server_heartbeat
try:
    mcp_server_heartbeat.main()
except SystemExit as exc:
    assert exc.code == 0, exc.code
"""


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What one server start loaded and built (a fresh interpreter, a temp directory)."""
    root = tmp_path_factory.mktemp("cold")
    argv = ["--dir", str(root / "sessions"), "--session-id", "cold-1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTBEAT_", "CLAUDE"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.replace("ARGV", repr(argv))],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = [x for x in done.stderr.splitlines() if x.startswith("FOUND:")][-1]
    found: dict[str, Any] = json.loads(line[len("FOUND:") :])
    assert found["serves"] == "mcp_server_heartbeat.mcp.stdio_lines.serve_stdio"
    assert len(found["tools"]) == 6, found["tools"]  # the probe saw a whole server
    return found


def test_the_server_start_does_not_import_argparse(started: dict[str, Any]) -> None:
    assert "argparse" not in started["modules"]


def test_the_server_start_does_not_import_the_observation_reports(
    started: dict[str, Any],
) -> None:
    """``session.observe`` (status, trace, gc, a plan's report) is imported when a
    plan's resource is first read, not by the service at every start."""
    assert "mcp_server_heartbeat.session.observe" not in started["modules"]


def test_the_server_start_builds_only_the_models_it_writes(started: dict[str, Any]) -> None:
    """A plan's ledger and its waiters, and every tool reply, are built on first use."""
    built = set(started["built"])
    assert built.isdisjoint({"ClaimRecord", "Waiter"}), built
    deferred = {
        name
        for name, value in vars(models).items()
        if isinstance(value, type)
        and issubclass(value, models.BaseModel)
        and value.model_config.get("defer_build")
    }
    assert built.isdisjoint(deferred), built & deferred
    assert "SessionRecord" in built  # the record this start wrote


def test_the_server_start_builds_no_tool_argument_model(started: dict[str, Any]) -> None:
    """Each tool's argument model is built on its first call (``VerbatimMetadata``),
    and the metadata model itself never: only the resources' are built at start."""
    tools = {f"{name}Arguments" for name in started["tools"]}
    assert tools.isdisjoint(started["argument_models"]), started["argument_models"]
    assert started["metadata_built"] is False


def test_the_models_module_does_not_postpone_its_annotations() -> None:
    """pydantic would evaluate each field's annotation from a string at import."""
    for model in (models.SessionRecord, models.SessionView, models.ClaimRecord):
        assert not any(isinstance(a, str) for a in model.__annotations__.values()), model


def test_the_server_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    from mcp_server_heartbeat.mcp.server import server_version

    assert server_version() == version("mcp-server-heartbeat")


def test_the_server_start_runs_without_the_cyclic_collector(started: dict[str, Any]) -> None:
    """What the start builds is kept for the life of the process: it is frozen
    (never scanned again) instead of being scanned some 200 times as it comes;
    the collector runs again once the server serves."""
    collected = started["gc"]
    assert collected["enabled"] is True
    assert collected["frozen"] > 50_000, collected  # the SDK's and pydantic's objects
    assert collected["collections"][2] == 0, collected  # not one full collection
    assert sum(collected["collections"]) < 25, collected  # some 200 with the collector on
