"""Settings: command-line flags > environment > ``.ahrena/.directives`` > defaults.

The design contract fixes the sources and names:

1. flags ``--root --dir --scope --interval --stale-after --idle-after --session-id
   --store``
2. env ``HEARTBEAT_DIR HEARTBEAT_SCOPE HEARTBEAT_INTERVAL HEARTBEAT_STALE_AFTER
   HEARTBEAT_IDLE_AFTER HEARTBEAT_STORE HEARTBEAT_PROJECT HEARTBEAT_SCHEMA``
3. ``<root>/.ahrena/.directives`` (YAML), section ``session_tracking``:
   ``enabled``, ``heartbeat_dir``, ``scope``, ``stale_threshold_minutes``,
   ``plans_dir``, ``tags.kinds`` (the vocabulary of ``tags.kind``;
   session-tracking codex, section 9), ``store``, ``project`` and ``schema``
4. defaults: ``.ahrena/workflow/sessions``, scope ``repository``, interval 30 s,
   stale after 300 s, idle after 600 s, no store URL (the heartbeat directory),
   schema ``heartbeat``

The **store** (team mode): a ``postgresql://`` or ``postgres://`` URL selects a
PostgreSQL store; unset, the heartbeat directory is the store. Its password
never belongs in the URL of a committed file: libpq reads ``PGPASSWORD`` and
``~/.pgpass`` itself. Wherever the URL is shown (:meth:`Config.describe`,
errors) it is shown without its password (:func:`~..domain.store_url.redact_url`).
The **project** key partitions a shared database by repository
(:mod:`.project_key`): ``HEARTBEAT_PROJECT`` or ``session_tracking.project``,
else derived from the repository, and only for a PostgreSQL store (the heartbeat
directory is per repository already: there it is None unless given). The
**schema** is the PostgreSQL schema's name, checked against
:data:`SCHEMA_NAME_RE`.

``root`` is the coordination domain: ``--root``, else ``CLAUDE_PROJECT_DIR``,
else the working directory, normalised to the repository that contains it
(:mod:`.repository`: the main working tree, through the common git directory
from a linked worktree; a bare repository's own directory), so every worktree
and subdirectory of one repository shares one heartbeat directory. Scope
``worktree`` keeps one directory per worktree instead (root = the worktree's
top level). Outside git the chosen directory is the root. A relative heartbeat
directory is resolved against ``root``; a relative plans directory against the
session's worktree (plans are checked-out files). The directives file is the
root's, so every worktree of a repository shares one configuration and one
domain (a branch's own copy cannot split it; a root without one means the
defaults for every worktree); a bare repository has no checkout, so its
worktrees read their own copies. ``scope`` itself, which
decides the root, comes from a flag, the environment or the worktree's copy.
Every value records where it came from, which
``session_info`` shows. Any bad value raises :class:`ConfigError` naming it.
"""

from __future__ import annotations

import math
import os
import re
from collections import namedtuple

from ..domain.errors import ConfigError, InvalidInputError
from ..domain.liveness import Thresholds
from ..domain.store_url import POSTGRES_SCHEMES, is_postgres_url, redact_url
from .paths import is_dir, normal, resolve
from .repository import repository_dirs

TYPE_CHECKING = False
if TYPE_CHECKING:  # the status line and status resolve settings without typing or pathlib
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import Any

    from .repository import Repository

DEFAULT_DIR = ".ahrena/workflow/sessions"
SCOPES = ("repository", "worktree")
"""``repository`` (default): one heartbeat directory per repository; ``worktree``:
one per worktree (sessions in other worktrees are not seen)."""
DEFAULT_SCOPE = "repository"
DEFAULT_INTERVAL_S = 30.0
DEFAULT_STALE_AFTER_S = 300.0
DEFAULT_IDLE_AFTER_S = 600.0
DIRECTIVES_PATH = ".ahrena/.directives"
DEFAULT_PLANS_DIR = ".ahrena/workflow/plans"
MAX_DIRECTIVES_BYTES = 1024 * 1024
DEFAULT_SCHEMA = "heartbeat"
SCHEMA_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""A PostgreSQL schema name this server accepts: lower-case, unquoted-identifier
characters, at most 63 bytes (PostgreSQL's NAMEDATALEN - 1)."""
MAX_PROJECT_CHARS = 512


class Setting(namedtuple("Setting", ("value", "source"))):
    """A resolved ``value`` and its ``source`` (``str``): ``flag --x``, ``env X``,
    ``directives ...``, ``default``. Immutable (a named tuple)."""

    __slots__ = ()


FLAG_NAMES = (
    "root",
    "dir",
    "scope",
    "interval",
    "stale_after",
    "idle_after",
    "session_id",
    "store",
)
"""The flags that take part in resolution, in :class:`Flags` order."""


class Flags(namedtuple("Flags", FLAG_NAMES, defaults=(None,) * len(FLAG_NAMES))):
    """The command-line values that take part in resolution (None = not given):
    ``root``, ``dir``, ``scope``, ``session_id``, ``store`` (``str``);
    ``interval``, ``stale_after``, ``idle_after`` (seconds, ``float``).
    Immutable (a named tuple; ``_replace`` for a changed copy)."""

    __slots__ = ()


class StoreSetting(Setting):
    """The store URL's setting: its ``repr`` shows the URL without its password,
    so a logged ``Config`` never carries it."""

    __slots__ = ()

    def __repr__(self) -> str:
        shown = None if self.value is None else redact_url(self.value)
        return f"StoreSetting(value={shown!r}, source={self.source!r})"


class Config(
    namedtuple(
        "Config",
        (
            "root",
            "directory",
            "interval",
            "stale_after",
            "idle_after",
            "enabled",
            "plans_dir",
            "scope",
            "worktree",
            "tag_kinds",
            "store",
            "project",
            "schema",
        ),
        defaults=(
            Setting(DEFAULT_PLANS_DIR, "default"),
            Setting(DEFAULT_SCOPE, "default"),
            Setting(None, "default"),
            Setting(None, "default"),
            StoreSetting(None, "default"),
            Setting(None, "default"),
            Setting(DEFAULT_SCHEMA, "default"),
        ),
    )
):
    """The resolved configuration: one :class:`Setting` per field. Durations are
    seconds. Immutable (a named tuple; ``_replace`` for a changed copy).

    Fields: ``root``, ``directory`` (absolute ``str``), ``interval``,
    ``stale_after``, ``idle_after`` (seconds), ``enabled`` (bool), ``plans_dir``,
    ``scope``; ``worktree``: the top level of the session's git worktree
    (absolute ``str``), or None outside git; ``tag_kinds``: ``tuple[str, ...]``
    of accepted ``tags.kind`` values, or None (any kebab-case kind); ``store``:
    the store URL (``postgresql://...``, password included when one was given),
    or None for the heartbeat directory, shown only through :meth:`describe`
    (its setting's ``repr`` hides the password); ``project``: the project key
    partitioning a shared store (``str``), or None; ``schema``: the PostgreSQL
    schema's name (matches :data:`SCHEMA_NAME_RE`).
    """

    __slots__ = ()

    @property
    def thresholds(self) -> Thresholds:
        """The stale and idle limits (seconds) liveness is judged with."""
        return Thresholds(
            stale_after=float(self.stale_after.value), idle_after=float(self.idle_after.value)
        )

    @property
    def dir_path(self) -> Path:
        """The heartbeat directory (absolute), as a ``Path`` (``directory.value`` is
        the same path as a string)."""
        from pathlib import Path

        return Path(self.directory.value)

    def describe(self) -> dict[str, Setting]:
        """Every setting by name, for ``session_info`` and the start-up line."""
        return {
            "root": self.root,
            "dir": self.directory,
            "scope": self.scope,
            "worktree": self.worktree,
            "interval": self.interval,
            "stale_after": self.stale_after,
            "idle_after": self.idle_after,
            "enabled": self.enabled,
            "plans_dir": self.plans_dir,
            "tag_kinds": self.tag_kinds,
            "store": Setting(
                None if self.store.value is None else redact_url(self.store.value),
                self.store.source,
            ),
            "project": self.project,
            "schema": self.schema,
        }


def resolve_config(
    flags: Flags,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    find_repo: Callable[[Path], Repository | None] | None = None,
) -> Config:
    """Resolve every setting (see module doc).

    ``cwd`` is the working directory (a ``Path`` or a string). ``find_repo``
    places a directory in git (tests inject one); None:
    :func:`~.repository.find_repository`'s rule, read without ``pathlib``
    (:func:`~.repository.repository_dirs`).

    Raises:
        ConfigError: a non-positive or non-numeric duration, an interval not
            below stale-after, a root that is not a directory, a directives file
            that is not valid YAML or has the wrong shape, an unknown scope, a
            store URL that is not ``postgresql://``/``postgres://``, a bad project
            key or schema name. The message names the value (a URL without its
            password) and its source.
    """
    launch = _launch_dir(flags, env, os.fspath(cwd))
    repo = _repository(launch.value, find_repo)
    worktree = launch.value if repo is None else repo[1]
    tracking = _read_directives(worktree)
    scope = _first(
        ("flag --scope", flags.scope),
        ("env HEARTBEAT_SCOPE", env.get("HEARTBEAT_SCOPE") or None),
        ("directives session_tracking.scope", tracking.get("scope")),
        ("default", DEFAULT_SCOPE),
    )
    if scope.value not in SCOPES:
        raise ConfigError(
            f"scope {scope.value!r} ({scope.source}) is not accepted: use one of "
            + " or ".join(SCOPES)
        )
    root = _domain_root(launch, repo, scope.value)
    if normal(root.value) != normal(worktree) and not (repo is not None and repo[2]):
        # The domain's own settings: every worktree of the repository reads the root's
        # file (none there: the defaults), so a branch's copy cannot split the domain
        # (another heartbeat_dir, a shorter stale threshold, tracking off). A bare
        # repository has no checkout of its own: its worktrees read their copies.
        tracking = _read_directives(root.value)

    dir_setting = _first(
        ("flag --dir", flags.dir),
        ("env HEARTBEAT_DIR", env.get("HEARTBEAT_DIR") or None),
        ("directives session_tracking.heartbeat_dir", tracking.get("heartbeat_dir")),
        ("default", DEFAULT_DIR),
    )
    if not isinstance(dir_setting.value, str) or not dir_setting.value.strip():
        raise ConfigError(
            f"{dir_setting.source}: expected a directory path, got {dir_setting.value!r}"
        )
    directory = os.path.join(root.value, os.path.expanduser(dir_setting.value))
    directory_setting = Setting(os.path.normpath(directory), dir_setting.source)

    stale_minutes = tracking.get("stale_threshold_minutes")
    interval = _seconds(
        "interval",
        ("flag --interval", flags.interval),
        ("env HEARTBEAT_INTERVAL", env.get("HEARTBEAT_INTERVAL") or None),
        ("default", DEFAULT_INTERVAL_S),
    )
    stale_after = _seconds(
        "stale-after",
        ("flag --stale-after", flags.stale_after),
        ("env HEARTBEAT_STALE_AFTER", env.get("HEARTBEAT_STALE_AFTER") or None),
        (
            "directives session_tracking.stale_threshold_minutes",
            None if stale_minutes is None else _minutes(stale_minutes),
        ),
        ("default", DEFAULT_STALE_AFTER_S),
    )
    idle_after = _seconds(
        "idle-after",
        ("flag --idle-after", flags.idle_after),
        ("env HEARTBEAT_IDLE_AFTER", env.get("HEARTBEAT_IDLE_AFTER") or None),
        ("default", DEFAULT_IDLE_AFTER_S),
    )
    if interval.value >= stale_after.value:
        raise ConfigError(
            f"interval {interval.value:g} s ({interval.source}) must be below stale-after "
            f"{stale_after.value:g} s ({stale_after.source}), or every session would look stale"
        )
    enabled_raw = tracking.get("enabled", True)
    if not isinstance(enabled_raw, bool):
        raise ConfigError(
            f"{DIRECTIVES_PATH}: session_tracking.enabled must be true or false, "
            f"got {enabled_raw!r}"
        )
    store = _store(flags, env, tracking)
    enabled = Setting(
        enabled_raw, "directives session_tracking.enabled" if "enabled" in tracking else "default"
    )
    return Config(
        root,
        directory_setting,
        interval,
        stale_after,
        idle_after,
        enabled,
        plans_dir=_plans_dir(env, tracking, worktree),
        scope=scope,
        worktree=Setting(
            None if repo is None else repo[1],
            "none (not in a git repository)" if repo is None else "git worktree",
        ),
        tag_kinds=_tag_kinds(tracking),
        store=store,
        project=_project(env, tracking, root.value, repo, scope.value, store.value),
        schema=_schema(env, tracking),
    )


def _store(flags: Flags, env: Mapping[str, str], tracking: Mapping[str, Any]) -> Setting:
    """The store URL (``--store`` > ``HEARTBEAT_STORE`` > ``session_tracking.store``),
    or None: a PostgreSQL URL or nothing (see module doc)."""
    chosen = _first(
        ("flag --store", flags.store or None),
        ("env HEARTBEAT_STORE", env.get("HEARTBEAT_STORE") or None),
        ("directives session_tracking.store", tracking.get("store")),
        ("default", _UNSET),
    )
    if chosen.value is _UNSET:
        return StoreSetting(None, "default (the heartbeat directory)")
    accepted = " or ".join(f"{scheme}://..." for scheme in POSTGRES_SCHEMES)
    if not isinstance(chosen.value, str):
        raise ConfigError(
            f"store ({chosen.source}): expected a URL ({accepted}), "
            f"got a {type(chosen.value).__name__}"
        )
    if not is_postgres_url(chosen.value.strip()):
        raise ConfigError(
            f"store {redact_url(chosen.value)!r} ({chosen.source}) is not accepted: give a "
            f"PostgreSQL URL ({accepted}), or no store for the heartbeat directory"
        )
    return StoreSetting(chosen.value.strip(), chosen.source)


def _project(
    env: Mapping[str, str],
    tracking: Mapping[str, Any],
    root: str,
    repo: _Dirs | None,
    scope: str,
    store_url: str | None,
) -> Setting:
    """The project key (``HEARTBEAT_PROJECT`` > ``session_tracking.project`` >
    derived from the repository, :mod:`.project_key`, for a PostgreSQL store only)."""
    given = _first(
        ("env HEARTBEAT_PROJECT", env.get("HEARTBEAT_PROJECT") or None),
        ("directives session_tracking.project", tracking.get("project")),
        ("default", _UNSET),
    )
    if given.value is not _UNSET:
        value = given.value
        if (
            not isinstance(value, str)
            or not value.strip()
            or len(value) > MAX_PROJECT_CHARS
            or not value.isprintable()
        ):
            raise ConfigError(
                f"project {value!r} ({given.source}) is not accepted: give a non-empty "
                f"printable key of at most {MAX_PROJECT_CHARS} characters"
            )
        return Setting(value.strip(), given.source)
    if store_url is None:
        return Setting(None, "default (not used: the heartbeat directory is per repository)")
    from pathlib import Path

    from .project_key import derive_project  # reads the git config; may run git

    key, source = derive_project(
        Path(root),
        None if repo is None else Path(repo[1]),
        per_worktree=scope == "worktree",
        allow_git=True,
    )
    return Setting(key, source)


def _schema(env: Mapping[str, str], tracking: Mapping[str, Any]) -> Setting:
    """The PostgreSQL schema's name (``HEARTBEAT_SCHEMA`` > ``session_tracking.schema``
    > ``heartbeat``), matching :data:`SCHEMA_NAME_RE`."""
    chosen = _first(
        ("env HEARTBEAT_SCHEMA", env.get("HEARTBEAT_SCHEMA") or None),
        ("directives session_tracking.schema", tracking.get("schema")),
        ("default", DEFAULT_SCHEMA),
    )
    if not isinstance(chosen.value, str) or not SCHEMA_NAME_RE.fullmatch(chosen.value):
        raise ConfigError(
            f"schema {chosen.value!r} ({chosen.source}) is not accepted: give a lower-case "
            "name of letters, digits and _ (not starting with a digit), at most 63 "
            "characters, e.g. heartbeat"
        )
    return Setting(chosen.value, chosen.source)


_UNSET: Any = object()


def _plans_dir(env: Mapping[str, str], tracking: Mapping[str, Any], root: str) -> Setting:
    """Where plan files live (env ``HEARTBEAT_PLANS_DIR`` > directives
    ``session_tracking.plans_dir`` > ``.ahrena/workflow/plans``), absolute."""
    chosen = _first(
        ("env HEARTBEAT_PLANS_DIR", env.get("HEARTBEAT_PLANS_DIR") or None),
        ("directives session_tracking.plans_dir", tracking.get("plans_dir")),
        ("default", DEFAULT_PLANS_DIR),
    )
    if not isinstance(chosen.value, str) or not chosen.value.strip():
        raise ConfigError(f"{chosen.source}: expected a directory path, got {chosen.value!r}")
    path = os.path.join(root, os.path.expanduser(chosen.value))
    return Setting(os.path.normpath(path), chosen.source)


def _tag_kinds(tracking: Mapping[str, Any]) -> Setting:
    """``session_tracking.tags.kinds``: a list of lowercase kebab-case words, or absent."""
    tags = tracking.get("tags")
    if tags is None:
        return Setting(None, "default")
    where = f"{DIRECTIVES_PATH}: session_tracking.tags"
    if not isinstance(tags, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(tags).__name__}")
    kinds = tags.get("kinds")
    if kinds is None:
        return Setting(None, "default")
    if not isinstance(kinds, list) or not kinds:
        raise ConfigError(f"{where}.kinds must be a non-empty list of words, got {kinds!r}")
    from ..domain.validation import MAX_KIND_CHARS, validate_kebab

    for kind in kinds:
        try:
            validate_kebab(kind, f"{where}.kinds[]", MAX_KIND_CHARS)
        except InvalidInputError as exc:
            raise ConfigError(str(exc)) from exc
    return Setting(tuple(kinds), "directives session_tracking.tags.kinds")


def _launch_dir(flags: Flags, env: Mapping[str, str], cwd: str) -> Setting:
    """``--root``, else ``CLAUDE_PROJECT_DIR``, else the working directory: absolute,
    resolved, and a directory (else ConfigError)."""
    if flags.root:
        chosen = Setting(flags.root, "flag --root")
    elif env.get("CLAUDE_PROJECT_DIR"):
        chosen = Setting(env["CLAUDE_PROJECT_DIR"], "env CLAUDE_PROJECT_DIR")
    else:
        chosen = Setting(normal(cwd), "working directory")
    path = os.path.join(cwd, os.path.expanduser(chosen.value))
    if not is_dir(path):
        raise ConfigError(f"root {chosen.value!r} ({chosen.source}) is not a directory")
    return Setting(resolve(path), chosen.source)


_Dirs = tuple[str, str, bool]
"""A repository's ``(root, worktree, bare)``, paths as strings
(:func:`~.repository.repository_dirs`)."""


def _repository(launch: str, find_repo: Callable[[Path], Repository | None] | None) -> _Dirs | None:
    """Where ``launch`` sits in git (see :func:`resolve_config`), or None outside it."""
    if find_repo is None:
        return repository_dirs(launch)
    from pathlib import Path

    repo = find_repo(Path(launch))
    return None if repo is None else (str(repo.root), str(repo.worktree), repo.bare)


def _domain_root(launch: Setting, repo: _Dirs | None, scope: str) -> Setting:
    """The coordination domain's root for ``scope`` (see module doc)."""
    if repo is None:
        return launch
    root, worktree, bare = repo
    if scope == "worktree":
        return Setting(resolve(worktree), f"{launch.source}, its git worktree")
    where = "bare repository" if bare else "repository root"
    return Setting(resolve(root), f"{launch.source}, its {where}")


def _read_directives(root: str) -> dict[str, Any]:
    """The ``session_tracking`` mapping of ``<root>/.ahrena/.directives``, or {}."""
    path = os.path.join(root, DIRECTIVES_PATH)
    try:
        if os.stat(path).st_size > MAX_DIRECTIVES_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_DIRECTIVES_BYTES} bytes")
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    import yaml  # only when the file exists: the status line and hooks rarely need it

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top, got {type(data).__name__}")
    section = data.get("session_tracking")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(
            f"{path}: session_tracking must be a mapping, got {type(section).__name__}"
        )
    return section


def _first(*candidates: tuple[str, Any]) -> Setting:
    for source, value in candidates:
        if value is not None:
            return Setting(value, source)
    raise AssertionError("the last candidate is a default")  # pragma: no cover


def _seconds(name: str, *candidates: tuple[str, Any]) -> Setting:
    chosen = _first(*candidates)
    value = chosen.value
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(
            f"{name} {value!r} ({chosen.source}) is not accepted: give a number of seconds > 0"
        )
    return Setting(seconds, chosen.source)


def _minutes(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"{DIRECTIVES_PATH}: session_tracking.stale_threshold_minutes must be a number, "
            f"got {value!r}"
        )
    return float(value) * 60.0


__all__ = [
    "DEFAULT_DIR",
    "DEFAULT_IDLE_AFTER_S",
    "DEFAULT_INTERVAL_S",
    "DEFAULT_PLANS_DIR",
    "DEFAULT_SCHEMA",
    "DEFAULT_SCOPE",
    "DEFAULT_STALE_AFTER_S",
    "DIRECTIVES_PATH",
    "SCHEMA_NAME_RE",
    "SCOPES",
    "Config",
    "Flags",
    "Setting",
    "StoreSetting",
    "resolve_config",
]
