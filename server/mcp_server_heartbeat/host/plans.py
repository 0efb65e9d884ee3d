"""Plan resolution: the *active* plan is the one this session claimed; a
*suggested* plan is a hint matched from the branch name, shown and never
claimed automatically (claiming stays the agent's decision).

Plans are the files (or folders) of the plans directory
(``session_tracking.plans_dir``, default ``.ahrena/workflow/plans``). A name
``090-review-loop.md`` is plan id ``090`` with slug ``review-loop``; a name
without a leading number (``feat-login.md``) is its own id and slug. Only
names are read — never the files' contents.

A plan matches a branch when the branch's words (split at ``/ - _ .``)
contain its number (``feat/90-review-loop`` has 90, which is plan ``090``: the
numbers compare as integers) or its slug's words in a row. A plan matched by
both beats one matched by either; when the best match is not unique there is
no suggestion (a guess between two plans would mislead more than silence).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..domain.models import PlanHint
from ..domain.validation import ID_PATTERN

MAX_PLANS_LISTED = 2000
"""The plans directory is scanned for at most this many entries."""

NO_SUGGESTION_BRANCHES = frozenset({"main", "master", "trunk", "develop", "dev", "HEAD"})
"""Branches that name no plan."""

MatchedBy = Literal["id+slug", "id", "slug"]
_ID_RE = re.compile(ID_PATTERN)
_WORD_SPLIT = re.compile(r"[/\-_.\s]+")


@dataclass(frozen=True)
class PlanFile:
    """A plan as named in the plans directory: its id, number (if any) and slug words."""

    plan_id: str
    file: str
    number: int | None
    slug: tuple[str, ...]


def parse_plan_name(name: str) -> PlanFile | None:
    """``090-review-loop.md`` -> id ``090``, number 90, slug (review, loop).

    Returns None for hidden names and names whose id would not be a valid
    plan id (it must be usable with ``claim_plan``).
    """
    if name.startswith("."):
        return None
    stem = name
    if "." in name:
        stem = name.rsplit(".", 1)[0] or name
    match = re.fullmatch(r"(\d+)(?:[-_.](.*))?", stem)
    if match:
        plan_id, rest = match[1], match[2] or ""
        number: int | None = int(plan_id)
    else:
        plan_id, rest, number = stem, stem, None
    if not _ID_RE.fullmatch(plan_id):
        return None
    slug = tuple(word for word in _WORD_SPLIT.split(rest.lower()) if word)
    return PlanFile(plan_id=plan_id, file=name, number=number, slug=slug)


def list_plans(plans_dir: Path) -> list[PlanFile]:
    """The plans named in ``plans_dir``, sorted by file name; [] when it is missing.

    Reads the directory's entry names only (at most :data:`MAX_PLANS_LISTED`).
    """
    plans: list[PlanFile] = []
    try:
        with os.scandir(plans_dir) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_PLANS_LISTED:
                    break
                plan = parse_plan_name(entry.name)
                if plan is not None:
                    plans.append(plan)
    except OSError:
        return []
    return sorted(plans, key=lambda plan: plan.file)


def suggest_plan(branch: str | None, plans: list[PlanFile]) -> PlanHint | None:
    """The plan the branch name points at, or None (see module doc for the rule).

    Args:
        branch: the current branch; None, ``HEAD`` and trunk names suggest nothing.
        plans: the candidates, e.g. from :func:`list_plans`.
    """
    if not branch or branch in NO_SUGGESTION_BRANCHES:
        return None
    words = [word for word in _WORD_SPLIT.split(branch.lower()) if word]
    numbers = {int(word) for word in words if word.isdigit()}
    scored: list[tuple[int, PlanFile, MatchedBy]] = []
    for plan in plans:
        by_id = plan.number is not None and plan.number in numbers
        by_slug = bool(plan.slug) and _contains_run(words, plan.slug)
        if by_id and by_slug:
            scored.append((2, plan, "id+slug"))
        elif by_id:
            scored.append((1, plan, "id"))
        elif by_slug:
            scored.append((1, plan, "slug"))
    if not scored:
        return None
    best = max(score for score, _, _ in scored)
    top = [(plan, how) for score, plan, how in scored if score == best]
    if len({plan.plan_id for plan, _ in top}) != 1:
        return None
    plan, how = top[0]
    return PlanHint(plan_id=plan.plan_id, file=plan.file, matched_by=how, branch=branch)


def _contains_run(words: list[str], run: tuple[str, ...]) -> bool:
    """True when ``run`` occurs in ``words`` as consecutive items."""
    size = len(run)
    return any(tuple(words[i : i + size]) == run for i in range(len(words) - size + 1))


__all__ = [
    "NO_SUGGESTION_BRANCHES",
    "PlanFile",
    "list_plans",
    "parse_plan_name",
    "suggest_plan",
]
