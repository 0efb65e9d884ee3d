"""Plan resolution: the suggested plan comes from the branch name, never claimed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server_heartbeat.host.config import Flags, resolve_config
from mcp_server_heartbeat.host.plans import list_plans, parse_plan_name, suggest_plan
from mcp_server_heartbeat.runtime import open_runtime

PLAN_NAMES = [
    "090-review-loop.md",
    "043-login.md",
    "007-login-audit.md",
    "feat-export.md",
    "120",
    ".hidden.md",
    "README",
]


def plans() -> list:
    return [plan for name in PLAN_NAMES if (plan := parse_plan_name(name)) is not None]


@pytest.mark.parametrize(
    ("branch", "plan_id", "matched_by"),
    [
        ("feat/90-review-loop", "090", "id+slug"),
        ("feat/090-review-loop", "090", "id+slug"),
        ("feat/review-loop", "090", "slug"),
        ("fix/43", "043", "id"),
        ("plan-043_hotfix", "043", "id"),
        ("chore/120-bump", "120", "id"),
        ("feat/export-csv", "feat-export", "slug"),
        ("feat/7-login-audit", "007", "id+slug"),
        # 043-login matches by slug; 007-login-audit needs 'login audit' in a row.
        ("feat/login", "043", "slug"),
    ],
)
def test_branch_suggests_plan(branch: str, plan_id: str, matched_by: str) -> None:
    hint = suggest_plan(branch, plans())
    assert hint is not None
    assert (hint.plan_id, hint.matched_by, hint.branch) == (plan_id, matched_by, branch)


@pytest.mark.parametrize(
    "branch",
    [
        None,
        "main",
        "master",
        "HEAD",
        "feat/91-review-loops",  # another number, and the slug's words not in a row
        "feat/unrelated",
    ],
)
def test_no_suggestion(branch: str | None) -> None:
    assert suggest_plan(branch, plans()) is None


def test_a_tie_suggests_nothing() -> None:
    tied = [parse_plan_name("043-login.md"), parse_plan_name("044-login.md")]
    assert suggest_plan("feat/login", [p for p in tied if p]) is None
    # ... but a number breaks the tie.
    hint = suggest_plan("feat/44-login", [p for p in tied if p])
    assert hint is not None and hint.plan_id == "044"


def test_parse_plan_name() -> None:
    plan = parse_plan_name("090-review-loop.md")
    assert plan is not None
    assert (plan.plan_id, plan.number, plan.slug) == ("090", 90, ("review", "loop"))
    assert parse_plan_name(".090-x.md") is None
    assert parse_plan_name("bad name!.md") is None  # not usable with claim_plan


def test_list_plans_reads_names_only(tmp_path: Path) -> None:
    (tmp_path / "090-review-loop.md").write_text("x")
    (tmp_path / "043-login").mkdir()  # a plan folder counts too
    (tmp_path / ".draft.md").write_text("x")
    assert [p.plan_id for p in list_plans(tmp_path)] == ["043", "090"]
    assert list_plans(tmp_path / "missing") == []


def test_plans_dir_is_configurable(tmp_path: Path) -> None:
    (tmp_path / ".ahrena").mkdir()
    (tmp_path / ".ahrena" / ".directives").write_text(
        "session_tracking:\n  plans_dir: docs/plans\n"
    )
    config = resolve_config(Flags(root=str(tmp_path)), {}, tmp_path)
    assert config.plans_dir.value == str(tmp_path / "docs" / "plans")
    assert config.plans_dir.source == "directives session_tracking.plans_dir"
    env = {"HEARTBEAT_PLANS_DIR": "/srv/plans"}
    assert resolve_config(Flags(root=str(tmp_path)), env, tmp_path).plans_dir.value == "/srv/plans"
    default = resolve_config(Flags(root=str(tmp_path / ".ahrena")), {}, tmp_path)
    assert default.plans_dir.value.endswith(".ahrena/workflow/plans")


def test_runtime_suggests_and_never_claims(tmp_path: Path) -> None:
    """The server finds the hint at start; the session's active plan stays empty."""
    git = tmp_path / ".git"
    git.mkdir()
    (git / "HEAD").write_text("ref: refs/heads/feat/90-review-loop\n")
    plans_dir = tmp_path / ".ahrena" / "workflow" / "plans"
    plans_dir.mkdir(parents=True)
    (plans_dir / "090-review-loop.md").write_text("# Review loop\n")
    runtime = open_runtime(Flags(root=str(tmp_path), session_id="s-plan"), {}, tmp_path)
    assert runtime.service is not None
    context = runtime.plans()
    assert context.active is None
    assert context.suggested is not None and context.suggested.plan_id == "090"
    assert not (runtime.config.dir_path / "claims" / "090.json").exists()
    runtime.service.claim("090")
    assert runtime.plans().active == "090"
    runtime.service.end("test")
