"""A person asked before force (issue 12, part 4), through the SDK's in-process
client with its elicitation callback: declined or cancelled changes nothing,
confirmed takes the plan over, a client without the capability is never asked,
a holder that changed while the person answered is never forced blindly, and
the session's lock is free while the person thinks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, types

from conftest import make_identity
from mcp_server_heartbeat.domain.consent import heartbeat_age
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.mcp.server import build_app
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore

pytestmark = pytest.mark.anyio

MINE = "mem-session"


def _holder(runtime: Any, clock: Any, session_id: str, pid: int) -> SessionService:
    """Another session in the runtime's directory."""
    service = SessionService(
        DirectoryStore(runtime.config.dir_path, clock=clock),
        make_identity(session_id, pid),
        Thresholds(stale_after=300, idle_after=600),
        interval=30.0,
        clock=clock,
        probe=runtime.service._probe,
    )
    service.start()
    return service


def _others(directory: Path) -> dict[str, Any]:
    """Every file in the directory but this session's own record (its background
    heartbeat may rewrite it): ledgers, the holder's record, and the event log
    without this session's own start and end (the client disconnects)."""
    files: dict[str, Any] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.name == f"{MINE}.json":
            continue
        if path.name == "events.jsonl":
            events = [json.loads(line) for line in path.read_text().splitlines()]
            files[path.name] = [
                e
                for e in events
                if not (e["session_id"] == MINE and e["event"].startswith("session_"))
            ]
        else:
            files[str(path.relative_to(directory))] = path.read_bytes()
    return files


class Person:
    """An elicitation callback that records each form and answers from a script."""

    def __init__(self, *answers: tuple[str, dict[str, Any] | None], before: Any = None) -> None:
        self.answers = list(answers)
        self.forms: list[types.ElicitRequestFormParams] = []
        self.before = before

    async def __call__(self, context: Any, params: Any) -> types.ElicitResult:
        self.forms.append(params)
        if self.before is not None:
            await self.before(len(self.forms))
        action, content = self.answers.pop(0)
        return types.ElicitResult(action=action, content=content)


@pytest.fixture
def scene(make_runtime, clock):
    """Session ``a`` holds 043 with token 1 and has gone stale (alive, not dead)."""
    runtime = make_runtime()
    holder = _holder(runtime, clock, "a", 101)
    holder.heartbeat(activity="kata-pr-prepare:step3")
    assert holder.claim("043").fencing_token == 1
    clock.advance(361)
    return runtime, holder


async def _force(runtime: Any, person: Person | None, mode: str = "legacy") -> dict[str, Any]:
    app = build_app(runtime)
    kwargs: dict[str, Any] = {"mode": mode}
    if person is not None:
        kwargs["elicitation_callback"] = person
    async with Client(app, **kwargs) as client:
        result = await client.call_tool("claim_plan", {"plan_id": "043", "force": True})
        assert not result.is_error, result.content
        return result.structured_content


@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_declined_or_cancelled_changes_nothing(scene, action):
    runtime, _ = scene
    directory = runtime.config.dir_path
    before = _others(directory)
    person = Person((action, None))
    result = await _force(runtime, person)
    assert (result["outcome"], result["claimed"], result["fencing_token"]) == (
        "force_declined",
        False,
        None,
    )
    assert result["holder"]["session_id"] == "a"
    assert "nothing was changed" in result["message"]
    assert f"The person {action}" in result["message"]
    # Ledger (holder, token), the holder's record and the event log: byte for byte.
    assert _others(directory) == before
    assert len(person.forms) == 1


async def test_the_form_says_who_how_stale_what_and_the_fencing_consequence(scene):
    runtime, _ = scene
    person = Person(("decline", None))
    await _force(runtime, person)
    form = person.forms[0]
    text = form.message
    assert "session a " in text or "session a." in text or "session a (" in text
    for fact in ("host ", "branch main", "worktree ", "6 min ago", "'kata-pr-prepare:step3'"):
        assert fact in text, fact
    assert "fencing token 1 stops being valid" in text
    assert "gets token 2" in text
    assert "commits and pushes for plan 043 will be refused" in text
    schema = form.requested_schema
    assert schema["required"] == ["confirm"]
    assert schema["properties"]["confirm"]["type"] == "boolean"


async def test_accepted_and_confirmed_takes_over_forced_stale(scene):
    runtime, holder = scene
    result = await _force(runtime, Person(("accept", {"confirm": True})))
    assert (result["outcome"], result["takeover_reason"], result["fencing_token"]) == (
        "taken_over",
        "forced_stale",
        2,
    )
    assert result["previous_session"] == "a"
    events = (runtime.config.dir_path / "events.jsonl").read_text().splitlines()
    taken = [json.loads(e) for e in events if '"claim_taken_over"' in e]
    assert [(e["previous_holder"], e["reason"], e["force"]) for e in taken] == [
        ("a", "forced_stale", True)
    ]
    lost = holder.heartbeat().claim_lost  # the holder learns it (released since: disconnect)
    assert lost is not None and lost.fencing_token == 1


async def test_accepted_without_the_box_ticked_is_a_no(scene):
    runtime, _ = scene
    before = _others(runtime.config.dir_path)
    result = await _force(runtime, Person(("accept", {"confirm": False})))
    assert result["outcome"] == "force_declined"
    assert _others(runtime.config.dir_path) == before


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_client_without_elicitation_gets_todays_outcome_and_no_request(scene, mode):
    runtime, _ = scene
    # No callback: the client declares no elicitation capability, and the SDK's
    # default answer to a request would make the outcome force_declined.
    result = await _force(runtime, None, mode=mode)
    assert (result["outcome"], result["takeover_reason"]) == ("taken_over", "forced_stale")


async def test_automatic_takeover_never_asks(scene, probe):
    runtime, _ = scene
    probe.dead.add(101)  # the holder's process is gone: proof of death
    person = Person()
    result = await _force(runtime, person)
    assert (result["outcome"], result["takeover_reason"]) == ("taken_over", "proof_of_death")
    assert person.forms == []


async def test_without_force_nobody_is_asked(scene):
    runtime, _ = scene
    person = Person()
    async with Client(build_app(runtime), mode="legacy", elicitation_callback=person) as client:
        result = await client.call_tool("claim_plan", {"plan_id": "043"})
    assert result.structured_content["outcome"] == "held_by_other"
    assert person.forms == []


async def test_another_stale_holder_while_asking_is_asked_again(scene, clock):
    runtime, holder = scene
    others: list[SessionService] = []

    async def change_holder(round_: int) -> None:
        if round_ == 1:  # a releases, c claims (token 2) and goes stale too
            holder.release("043")
            c = _holder(runtime, clock, "c", 103)
            assert c.claim("043").fencing_token == 2
            others.append(c)
            clock.advance(361)

    person = Person(("accept", {"confirm": True}), ("decline", None), before=change_holder)
    result = await _force(runtime, person)
    assert len(person.forms) == 2
    assert "session c " in person.forms[1].message or "session c (" in person.forms[1].message
    assert "fencing token 2 stops being valid" in person.forms[1].message
    assert (result["outcome"], result["holder"]["session_id"]) == ("force_declined", "c")
    ledger = DirectoryStore(runtime.config.dir_path).read_claim("043")
    assert (ledger.holder, ledger.fencing_token) == ("c", 2)


async def test_holder_alive_again_while_asking_is_not_forced(scene):
    runtime, holder = scene

    async def holder_beats(_round: int) -> None:
        holder.heartbeat()  # fresh again: a live holder is never displaced

    person = Person(("accept", {"confirm": True}), before=holder_beats)
    result = await _force(runtime, person)
    assert result["outcome"] == "held_by_other"
    assert result["holder"]["status"] == "active"
    assert len(person.forms) == 1


async def test_plan_freed_while_asking_gets_the_normal_claim(scene):
    runtime, holder = scene

    async def holder_releases(_round: int) -> None:
        holder.release("043")

    result = await _force(runtime, Person(("accept", {"confirm": True}), before=holder_releases))
    assert (result["outcome"], result["fencing_token"]) == ("claimed", 2)


async def test_the_session_lock_is_free_while_the_person_answers(scene):
    runtime, _ = scene

    async def beat_meanwhile(_round: int) -> None:
        # The tool's own session heartbeats (mutex and store lock) during the question.
        with anyio.fail_after(5):
            await anyio.to_thread.run_sync(runtime.service.beat, abandon_on_cancel=True)

    result = await _force(runtime, Person(("decline", None), before=beat_meanwhile))
    assert result["outcome"] == "force_declined"


async def test_stateless_connection_with_elicitation_changes_nothing(scene):
    """On a 2026-07-28 connection the question cannot be sent mid-call: fail closed."""
    runtime, _ = scene
    before = _others(runtime.config.dir_path)
    person = Person()
    result = await _force(runtime, person, mode="auto")
    assert result["outcome"] == "force_declined"
    assert "could not be asked" in result["message"]
    assert _others(runtime.config.dir_path) == before
    assert person.forms == []


def test_heartbeat_age_reads_like_a_person_would_say_it():
    assert [heartbeat_age(s) for s in (None, 45, 361, 7500)] == [
        "never",
        "45 s ago",
        "6 min ago",
        "2 h 5 min ago",
    ]
