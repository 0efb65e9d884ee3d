"""Where a session works: project type, package manager, framework and git facts.

Detected once at start from a handful of files at the project root, cheaply
and without side effects: no network, no subprocess (so nothing can hang a
hook or the server's start), no file read larger than
:data:`MAX_MANIFEST_BYTES`. Git facts come from the repository's files, not
from ``git``: ``.git`` may be a directory, or a file pointing elsewhere
(``gitdir: ...``, as in worktrees and submodules), whose ``commondir`` holds
the shared ``config``. A remote URL never carries credentials
(:func:`strip_credentials`): the password, query and fragment are always
removed, and the user too unless it is the conventional ``git`` (tokens
often travel as the user name), for every scheme and for scp-like
``user@host:path`` remotes.

Markers, in the order stacks are reported:

- Python — ``pyproject.toml``, ``setup.py``, ``setup.cfg``, ``requirements.txt`` or
  ``Pipfile``; manager uv, poetry, pdm (by lock file or ``[tool.x]``), pipenv, hatch, else pip.
- Node.js — ``package.json``; manager from its ``packageManager`` field, else by lock
  file: bun, pnpm, yarn, else npm.
- Go — ``go.mod`` (go). Rust — ``Cargo.toml`` (cargo). Java — ``pom.xml`` (maven),
  ``build.gradle[.kts]`` (gradle). Ruby — ``Gemfile`` (bundler). PHP — ``composer.json``
  (composer).

Frameworks come from the declared dependencies (FastAPI, Django, Flask, Next.js,
NestJS, Express, Gin, Axum, Spring Boot, Rails, Laravel, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..domain.models import ProjectContext, Stack
from .repository import MAX_SMALL_FILE_BYTES, find_git_dir
from .repository import read_small as _read_small

MAX_MANIFEST_BYTES = MAX_SMALL_FILE_BYTES
"""Manifests larger than this (256 KiB) are not parsed; the type is still reported."""


def detect_project(root: Path, start: Path | None = None) -> ProjectContext:
    """Describe the project at ``root`` (see module doc). Never raises on bad files.

    Args:
        root: the project root (absolute), where manifests are looked for.
        start: where to look for ``.git`` when it lies inside ``root`` (the
            working directory, e.g. a sub-folder of a monorepo); otherwise
            ``root``. The nearest ``.git`` at or above it counts.
    """
    stacks = [stack for detect in _DETECTORS if (stack := detect(root)) is not None]
    if start is None or not start.resolve().is_relative_to(root.resolve()):
        start = root
    git = find_git_dir(start)
    branch = remote = git_root = None
    if git is not None:
        work_tree, git_dir, common_dir = git
        git_root = str(work_tree)
        branch = read_branch(git_dir)
        remote = read_remote_url(common_dir)
    first = stacks[0] if stacks else None
    return ProjectContext(
        root=str(root),
        type=first.type if first else None,
        package_manager=first.package_manager if first else None,
        framework=first.frameworks[0] if first and first.frameworks else None,
        stacks=stacks,
        git_root=git_root,
        branch=branch,
        remote_url=remote,
    )


# -- git ---------------------------------------------------------------------------


def read_branch(git_dir: Path) -> str | None:
    """The branch ``HEAD`` names (``refs/heads/`` removed); ``"HEAD"`` when
    detached, as ``git rev-parse --abbrev-ref HEAD`` says; None if unreadable."""
    head = _read_small(git_dir / "HEAD")
    if head is None:
        return None
    head = head.strip()
    if head.startswith("ref:"):
        ref = head[len("ref:") :].strip()
        return ref.removeprefix("refs/heads/") or None
    return "HEAD" if head else None


_SECTION_RE = re.compile(r'^\s*\[\s*remote\s+"(?P<name>[^"]*)"\s*\]')
_OTHER_SECTION_RE = re.compile(r"^\s*\[")
_URL_RE = re.compile(r"^\s*url\s*=\s*(?P<url>.*?)\s*$", re.IGNORECASE)


def read_remote_url(common_dir: Path) -> str | None:
    """``origin``'s URL from ``<common dir>/config`` (else the first remote's),
    with credentials removed (:func:`strip_credentials`); None if there is none."""
    text = _read_small(common_dir / "config")
    if text is None:
        return None
    urls: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if section := _SECTION_RE.match(line):
            current = section["name"]
            continue
        if _OTHER_SECTION_RE.match(line):
            current = None
            continue
        if current is not None and current not in urls and (url := _URL_RE.match(line)):
            value = url["url"]
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            urls[current] = value
    chosen = urls.get("origin") or next(iter(urls.values()), None)
    return strip_credentials(chosen) if chosen else None


CONVENTIONAL_USERS = frozenset({"git"})
"""User names shown in remote URLs: the fixed, non-secret SSH user of GitHub,
GitLab, Bitbucket, Azure DevOps and Gitea. Any other user part may be a token
(``https://ghp_x@github.com/...``, ``ssh://glpat-x@host/...``) and is removed."""

_SCP_LIKE_RE = re.compile(r"(?P<user>[^/]+)@(?P<host>[^:/@]+):(?P<path>(?!//).*)", re.DOTALL)
"""Git's scp-like remote ``[user@]host:path`` (no ``://``; no ``/`` before the colon).
The user part runs to the last ``@`` before the host, so a password containing
``@`` never leaks into the host."""


def strip_credentials(url: str) -> str:
    """Remove secrets from a remote URL, whatever its scheme.

    The password, query and fragment are always removed; the user part is
    kept only when it is one of :data:`CONVENTIONAL_USERS` (``git``):

    * ``https://user:token@host/x``, ``https://token@host/x``,
      ``git+https://token@host/x`` -> ``https://host/x`` (``git+https://host/x``);
    * ``ssh://git:pw@host/x`` -> ``ssh://git@host/x``; ``ssh://token@host/x`` ->
      ``ssh://host/x``;
    * scp-like ``git@host:x`` is kept; ``token@host:x`` and ``user:token@host:x``
      become ``host:x``;
    * local paths are kept. A URL that cannot be parsed is not shown.
    """
    if "://" not in url:
        scp = _SCP_LIKE_RE.fullmatch(url)
        if scp is None:
            return url
        user = scp["user"].split(":", 1)[0]  # "user:password": the password always goes
        kept = f"{user}@" if user in CONVENTIONAL_USERS else ""
        return f"{kept}{scp['host']}:{scp['path']}"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<remote URL not shown: it could not be parsed>"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if parts.username in CONVENTIONAL_USERS:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# -- stacks ------------------------------------------------------------------------


def _python(root: Path) -> Stack | None:
    markers = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "Pipfile")
    if not any((root / name).is_file() for name in markers):
        return None
    pyproject = _read_toml(root / "pyproject.toml") or {}
    tool = pyproject.get("tool")
    if not isinstance(tool, dict):
        tool = {}
    if (root / "uv.lock").is_file() or "uv" in tool:
        manager = "uv"
    elif (root / "poetry.lock").is_file() or "poetry" in tool:
        manager = "poetry"
    elif (root / "pdm.lock").is_file() or "pdm" in tool:
        manager = "pdm"
    elif (root / "Pipfile").is_file():
        manager = "pipenv"
    elif "hatch" in tool and (root / "hatch.toml").is_file():
        manager = "hatch"
    else:
        manager = "pip"
    names: set[str] = set()
    project = pyproject.get("project")
    if isinstance(project, dict):
        names.update(_requirement_names(project.get("dependencies")))
        optional = project.get("optional-dependencies")
        if isinstance(optional, dict):
            for group in optional.values():
                names.update(_requirement_names(group))
    poetry = tool.get("poetry")
    if isinstance(poetry, dict) and isinstance(poetry.get("dependencies"), dict):
        names.update(_normalise(name) for name in poetry["dependencies"])
    for requirements in ("requirements.txt", "requirements-dev.txt", "Pipfile"):
        text = _read_small(root / requirements)
        if text:
            names.update(_requirement_names(text.splitlines()))
    frameworks = _frameworks(names, _PYTHON_FRAMEWORKS)
    if "Django" not in frameworks and (root / "manage.py").is_file():
        frameworks.append("Django")
    return Stack(type="Python", package_manager=manager, frameworks=frameworks)


_PYTHON_FRAMEWORKS = (
    ("fastapi", "FastAPI"),
    ("django", "Django"),
    ("flask", "Flask"),
    ("litestar", "Litestar"),
    ("starlette", "Starlette"),
    ("streamlit", "Streamlit"),
)


def _node(root: Path) -> Stack | None:
    if not (root / "package.json").is_file():
        return None
    package = _read_json(root / "package.json") or {}
    declared = package.get("packageManager")
    if isinstance(declared, str) and declared.split("@")[0] in _NODE_MANAGERS:
        manager = declared.split("@")[0]
    elif (root / "bun.lockb").is_file() or (root / "bun.lock").is_file():
        manager = "bun"
    elif (root / "pnpm-lock.yaml").is_file():
        manager = "pnpm"
    elif (root / "yarn.lock").is_file():
        manager = "yarn"
    else:
        manager = "npm"
    names: set[str] = set()
    for key in ("dependencies", "devDependencies", "peerDependencies"):
        deps = package.get(key)
        if isinstance(deps, dict):
            names.update(deps)
    return Stack(
        type="Node.js", package_manager=manager, frameworks=_frameworks(names, _NODE_FRAMEWORKS)
    )


_NODE_MANAGERS = ("npm", "yarn", "pnpm", "bun")
_NODE_FRAMEWORKS = (
    ("next", "Next.js"),
    ("@nestjs/core", "NestJS"),
    ("nuxt", "Nuxt"),
    ("@sveltejs/kit", "SvelteKit"),
    ("@remix-run/react", "Remix"),
    ("astro", "Astro"),
    ("@angular/core", "Angular"),
    ("express", "Express"),
    ("fastify", "Fastify"),
    ("hono", "Hono"),
    ("react", "React"),
    ("vue", "Vue"),
    ("svelte", "Svelte"),
)


def _go(root: Path) -> Stack | None:
    if not (root / "go.mod").is_file():
        return None
    text = _read_small(root / "go.mod") or ""
    modules = set(re.findall(r"^\s*(?:require\s+)?([a-z0-9.\-]+/[^\s]+)\s+v", text, re.MULTILINE))
    names = {_go_module_root(module) for module in modules}
    return Stack(type="Go", package_manager="go", frameworks=_frameworks(names, _GO_FRAMEWORKS))


def _go_module_root(module: str) -> str:
    """``github.com/labstack/echo/v4`` -> ``github.com/labstack/echo``."""
    return re.sub(r"/v\d+$", "", module)


_GO_FRAMEWORKS = (
    ("github.com/gin-gonic/gin", "Gin"),
    ("github.com/labstack/echo", "Echo"),
    ("github.com/gofiber/fiber", "Fiber"),
    ("github.com/go-chi/chi", "Chi"),
)


def _rust(root: Path) -> Stack | None:
    if not (root / "Cargo.toml").is_file():
        return None
    cargo = _read_toml(root / "Cargo.toml") or {}
    names: set[str] = set()
    for key in ("dependencies", "dev-dependencies"):
        deps = cargo.get(key)
        if isinstance(deps, dict):
            names.update(deps)
    workspace = cargo.get("workspace")
    if isinstance(workspace, dict) and isinstance(workspace.get("dependencies"), dict):
        names.update(workspace["dependencies"])
    return Stack(
        type="Rust", package_manager="cargo", frameworks=_frameworks(names, _RUST_FRAMEWORKS)
    )


_RUST_FRAMEWORKS = (
    ("axum", "Axum"),
    ("actix-web", "Actix Web"),
    ("rocket", "Rocket"),
    ("tauri", "Tauri"),
)


def _java(root: Path) -> Stack | None:
    if (root / "pom.xml").is_file():
        manager, build = "maven", root / "pom.xml"
    elif (root / "build.gradle.kts").is_file():
        manager, build = "gradle", root / "build.gradle.kts"
    elif (root / "build.gradle").is_file():
        manager, build = "gradle", root / "build.gradle"
    else:
        return None
    text = _read_small(build) or ""
    frameworks = ["Spring Boot"] if "spring-boot" in text else []
    if "io.quarkus" in text:
        frameworks.append("Quarkus")
    return Stack(type="Java", package_manager=manager, frameworks=frameworks)


def _ruby(root: Path) -> Stack | None:
    if not (root / "Gemfile").is_file():
        return None
    text = _read_small(root / "Gemfile") or ""
    gems = set(re.findall(r"""^\s*gem\s+["']([^"']+)["']""", text, re.MULTILINE))
    frameworks = _frameworks(gems, (("rails", "Rails"), ("sinatra", "Sinatra")))
    return Stack(type="Ruby", package_manager="bundler", frameworks=frameworks)


def _php(root: Path) -> Stack | None:
    if not (root / "composer.json").is_file():
        return None
    composer = _read_json(root / "composer.json") or {}
    names: set[str] = set()
    for key in ("require", "require-dev"):
        deps = composer.get(key)
        if isinstance(deps, dict):
            names.update(deps)
    frameworks = _frameworks(
        names, (("laravel/framework", "Laravel"), ("symfony/framework-bundle", "Symfony"))
    )
    return Stack(type="PHP", package_manager="composer", frameworks=frameworks)


_DETECTORS: tuple[Callable[[Path], Stack | None], ...] = (
    _python,
    _node,
    _go,
    _rust,
    _java,
    _ruby,
    _php,
)


# -- helpers -----------------------------------------------------------------------


def _frameworks(names: Iterable[str], table: tuple[tuple[str, str], ...]) -> list[str]:
    present = set(names)
    return [label for name, label in table if name in present]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(lines: object) -> set[str]:
    """Distribution names from PEP 508 strings (``fastapi[all]>=0.110`` -> ``fastapi``)."""
    if not isinstance(lines, list):
        return set()
    names = set()
    for line in lines:
        if isinstance(line, str) and (match := re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)):
            names.add(_normalise(match[1]))
    return names


def _read_toml(path: Path) -> dict[str, Any] | None:
    text = _read_small(path)
    if text is None:
        return None
    import tomllib  # only when a pyproject.toml is there to read

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def _read_json(path: Path) -> dict[str, Any] | None:
    text = _read_small(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


__all__ = [
    "CONVENTIONAL_USERS",
    "MAX_MANIFEST_BYTES",
    "detect_project",
    "find_git_dir",
    "read_branch",
    "read_remote_url",
    "strip_credentials",
]
