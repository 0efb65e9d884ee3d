"""Project detection on fixture trees: type, package manager, framework, git facts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mcp_server_heartbeat.host.project import detect_project, find_git_dir, strip_credentials


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


PYPROJECT_FASTAPI = '[project]\nname = "shop"\ndependencies = ["fastapi[all]>=0.110", "httpx"]\n'
PACKAGE_NEXT = json.dumps({"name": "web", "dependencies": {"next": "15.0.0", "react": "19"}})
PACKAGE_NEST = json.dumps({"name": "api", "dependencies": {"@nestjs/core": "11", "express": "5"}})

CASES = [
    # (id, files, type, package manager, framework)
    ("python-uv-fastapi", {"pyproject.toml": PYPROJECT_FASTAPI, "uv.lock": ""}, "Python", "uv",
     "FastAPI"),
    ("python-poetry-django",
     {"pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.12"\nDjango = "^5"\n'},
     "Python", "poetry", "Django"),
    ("python-pip-flask", {"requirements.txt": "# web\nFlask==3.0\ngunicorn\n"}, "Python", "pip",
     "Flask"),
    ("python-pipenv", {"Pipfile": '[packages]\nfastapi = "*"\n'}, "Python", "pipenv", "FastAPI"),
    ("python-pdm-manage-py", {"pyproject.toml": "[project]\nname='x'\n", "pdm.lock": "",
                              "manage.py": ""}, "Python", "pdm", "Django"),
    ("node-npm-next", {"package.json": PACKAGE_NEXT, "package-lock.json": "{}"}, "Node.js", "npm",
     "Next.js"),
    ("node-yarn-nest", {"package.json": PACKAGE_NEST, "yarn.lock": ""}, "Node.js", "yarn",
     "NestJS"),
    ("node-pnpm", {"package.json": PACKAGE_NEXT, "pnpm-lock.yaml": ""}, "Node.js", "pnpm",
     "Next.js"),
    ("node-bun", {"package.json": '{"name": "x"}', "bun.lockb": ""}, "Node.js", "bun", None),
    ("node-package-manager-field",
     {"package.json": json.dumps({"packageManager": "pnpm@9.1.0"}), "yarn.lock": ""},
     "Node.js", "pnpm", None),
    ("go-gin", {"go.mod": "module x\n\ngo 1.22\n\nrequire (\n\tgithub.com/gin-gonic/gin "
                "v1.10.0\n)\n"}, "Go", "go", "Gin"),
    ("go-echo-v4", {"go.mod": "module x\nrequire github.com/labstack/echo/v4 v4.12.0\n"}, "Go",
     "go", "Echo"),
    ("rust-axum", {"Cargo.toml": '[package]\nname = "x"\n[dependencies]\naxum = "0.7"\n'},
     "Rust", "cargo", "Axum"),
    ("java-maven-spring", {"pom.xml": "<project><artifactId>spring-boot-starter-web"
                           "</artifactId></project>"}, "Java", "maven", "Spring Boot"),
    ("java-gradle", {"build.gradle.kts": "plugins { java }\n"}, "Java", "gradle", None),
    ("ruby-rails", {"Gemfile": 'source "https://rubygems.org"\ngem "rails", "~> 7.1"\n'}, "Ruby",
     "bundler", "Rails"),
    ("php-laravel", {"composer.json": json.dumps({"require": {"laravel/framework": "^11"}})},
     "PHP", "composer", "Laravel"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("files", "kind", "manager", "framework"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_detects_type_manager_framework(
    tmp_path: Path, files: dict[str, str], kind: str, manager: str, framework: str | None
) -> None:
    project = detect_project(make_tree(tmp_path, files))
    assert (project.type, project.package_manager, project.framework) == (
        kind,
        manager,
        framework,
    )


def test_empty_tree_has_no_type(tmp_path: Path) -> None:
    project = detect_project(tmp_path)
    assert project.type is None and project.stacks == [] and project.root == str(tmp_path)


def test_several_stacks_are_all_reported_python_first(tmp_path: Path) -> None:
    make_tree(tmp_path, {"pyproject.toml": PYPROJECT_FASTAPI, "package.json": PACKAGE_NEXT})
    project = detect_project(tmp_path)
    assert [(s.type, s.frameworks) for s in project.stacks] == [
        ("Python", ["FastAPI"]),
        ("Node.js", ["Next.js", "React"]),
    ]


def test_broken_manifests_do_not_raise(tmp_path: Path) -> None:
    make_tree(tmp_path, {"pyproject.toml": "[[[", "package.json": "{not json"})
    project = detect_project(tmp_path)
    assert [s.type for s in project.stacks] == ["Python", "Node.js"]
    assert project.framework is None


def git_init(root: Path, branch: str = "feat/90-review-loop") -> None:
    subprocess.run(
        ["git", "init", "-q", "-b", branch, str(root)], check=True, stdin=subprocess.DEVNULL
    )


def test_git_branch_remote_and_root_from_files(tmp_path: Path) -> None:
    git_init(tmp_path)
    (tmp_path / ".git" / "config").write_text(
        "[core]\n\tbare = false\n"
        '[remote "upstream"]\n\turl = https://example.org/up.git\n'
        '[remote "origin"]\n\turl = https://alice:s3cr3t@github.com/acme/shop.git\n'
        "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    )
    sub = tmp_path / "src" / "pkg"
    sub.mkdir(parents=True)
    project = detect_project(tmp_path, start=sub)
    assert project.git_root == str(tmp_path)
    assert project.branch == "feat/90-review-loop"
    assert project.remote_url == "https://github.com/acme/shop.git"
    assert "s3cr3t" not in project.model_dump_json()


def test_detached_head_reads_as_HEAD(tmp_path: Path) -> None:
    git_init(tmp_path)
    (tmp_path / ".git" / "HEAD").write_text("0123456789abcdef0123456789abcdef01234567\n")
    assert detect_project(tmp_path).branch == "HEAD"


def test_worktree_git_file_reads_branch_and_common_config(tmp_path: Path) -> None:
    """``.git`` as a file (git worktree): HEAD in the worktree's git dir, the
    remote in the main repository's config (via ``commondir``)."""
    main = tmp_path / "main"
    main.mkdir()
    git_init(main, "main")
    (main / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = git@github.com:acme/shop.git\n'
    )
    wt_git = main / ".git" / "worktrees" / "wt"
    wt_git.mkdir(parents=True)
    (wt_git / "HEAD").write_text("ref: refs/heads/fix/43-login\n")
    (wt_git / "commondir").write_text("../..\n")
    work = tmp_path / "wt"
    work.mkdir()
    (work / ".git").write_text(f"gitdir: {wt_git}\n")
    project = detect_project(work)
    assert (project.git_root, project.branch, project.remote_url) == (
        str(work),
        "fix/43-login",
        "git@github.com:acme/shop.git",
    )
    found = find_git_dir(work)
    assert found is not None and found[2] == (main / ".git").resolve()


def test_relative_gitdir_pointer(tmp_path: Path) -> None:
    (tmp_path / "modules" / "x").mkdir(parents=True)
    (tmp_path / "modules" / "x" / "HEAD").write_text("ref: refs/heads/sub\n")
    work = tmp_path / "x"
    work.mkdir()
    (work / ".git").write_text("gitdir: ../modules/x\n")
    assert detect_project(work).branch == "sub"


def test_unreadable_git_pointer_gives_no_git_facts(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("not a pointer\n")
    project = detect_project(tmp_path)
    assert (project.git_root, project.branch, project.remote_url) == (None, None, None)


def test_detection_runs_no_subprocess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git_init(tmp_path)
    make_tree(tmp_path, {"pyproject.toml": PYPROJECT_FASTAPI, "go.mod": "module x\n"})

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"subprocess started: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    project = detect_project(tmp_path)
    assert project.branch == "feat/90-review-loop" and project.type == "Python"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://alice:s3cr3t@github.com/acme/shop.git", "https://github.com/acme/shop.git"),
        ("https://ghp_token@github.com/acme/shop.git", "https://github.com/acme/shop.git"),
        ("https://github.com/acme/shop.git?token=x#frag", "https://github.com/acme/shop.git"),
        ("http://u:p@host:8080/r.git", "http://host:8080/r.git"),
        ("ssh://git:pw@host.example/r.git", "ssh://git@host.example/r.git"),
        ("ssh://git@host.example:2222/r.git", "ssh://git@host.example:2222/r.git"),
        ("git@github.com:acme/shop.git", "git@github.com:acme/shop.git"),
        ("/srv/git/shop.git", "/srv/git/shop.git"),
        # Fault round two, 11: every scheme, and scp-like remotes.
        ("ssh://ghp_SECRET@host/x", "ssh://host/x"),
        ("ssh://alice@host.example/r.git", "ssh://host.example/r.git"),
        ("ssh://ghp_SECRET:pw@host:22/x", "ssh://host:22/x"),
        ("ssh://git@host/x?token=ghp_SECRET", "ssh://git@host/x"),
        ("git+https://ghp_SECRET@github.com/acme/shop.git", "git+https://github.com/acme/shop.git"),
        (
            "git+ssh://git:ghp_SECRET@github.com/acme/shop.git",
            "git+ssh://git@github.com/acme/shop.git",
        ),
        ("git://ghp_SECRET@host/x.git", "git://host/x.git"),
        ("ftp://u:ghp_SECRET@host/x", "ftp://host/x"),
        ("ghp_SECRET@github.com:acme/shop.git", "github.com:acme/shop.git"),
        ("user:ghp_SECRET@host:x/y.git", "host:x/y.git"),
        ("git:ghp_SECRET@host:x/y.git", "git@host:x/y.git"),
        ("github.com:acme/shop.git", "github.com:acme/shop.git"),
        ("user:p@ss@github.com:org/r", "github.com:org/r"),  # '@' inside the password
        ("tok@en@host:x", "host:x"),
        ("https://u:p@ss@host/x", "https://host/x"),
        ("../shop.git", "../shop.git"),
        ("file:///srv/git/shop.git", "file:///srv/git/shop.git"),
    ],
)
def test_strip_credentials(url: str, shown: str) -> None:
    assert strip_credentials(url) == shown


def test_git_is_looked_up_from_the_root_when_start_lies_outside(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git_init(root, "feat/1-x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert detect_project(root, start=elsewhere).branch == "feat/1-x"


@pytest.mark.parametrize(
    "url",
    [
        "ssh://ghp_SECRET@host/x",
        "git+https://ghp_SECRET@github.com/acme/shop.git",
        "ghp_SECRET@github.com:acme/shop.git",
        "bot:ghp_SECRET@github.com:acme/shop.git",
    ],
)
def test_no_remote_scheme_shows_a_token_in_project_context(tmp_path: Path, url: str) -> None:
    git_init(tmp_path)
    (tmp_path / ".git" / "config").write_text(f'[remote "origin"]\n\turl = {url}\n')
    project = detect_project(tmp_path)
    assert project.remote_url is not None
    assert project.remote_url.endswith(("acme/shop.git", "host/x")), project.remote_url
    assert "SECRET" not in project.model_dump_json()
