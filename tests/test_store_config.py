"""Team mode's settings: the store URL (flag > env > directives), the project key
(given, or derived from the repository), the schema name; the URL shown only
without its password; ``open_store`` choosing PostgreSQL by the URL (with a fake
backend: the real one lives in store/postgres and has its own suite)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_server_heartbeat.domain.errors import ConfigError
from mcp_server_heartbeat.host.config import Flags, resolve_config
from mcp_server_heartbeat.host.project_key import derive_project, normalise_remote
from mcp_server_heartbeat.mcp.server import build_app
from mcp_server_heartbeat.runtime import open_runtime
from mcp_server_heartbeat.store import open_light_reader, open_store
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from mcp_server_heartbeat.store.memory import MemoryStore
from mcp_server_heartbeat.store.urls import is_postgres_url, redact_url

SECRET = "s3cr3t-pw"
URL = f"postgresql://app:{SECRET}@db.example.com:5432/shop?sslmode=require&password={SECRET}"


def no_git(_: Path) -> None:
    return None


def directives(root: Path, text: str) -> None:
    (root / ".ahrena").mkdir(exist_ok=True)
    (root / ".ahrena" / ".directives").write_text(text)


# -- redaction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL, "postgresql://app@db.example.com:5432/shop?sslmode=require"),
        ("postgres://u:p@ss/w@h1:5432,h2:5433/db", "postgres://u@h1:5432,h2:5433/db"),
        ("postgresql://h/db?PassWord=x&application_name=a", "postgresql://h/db?application_name=a"),
        ("postgresql://:pw@h/db", "postgresql://h/db"),
        ("postgresql://app@h/db", "postgresql://app@h/db"),
        ("postgresql:///db", "postgresql:///db"),
        ("postgresql://u:pw@h/db#frag", "postgresql://u@h/db"),
        ("host=db password='a b' user=x", "host=db user=x"),
        ("host=db password=x", "host=db"),
    ],
)
def test_redact_url_removes_every_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_is_postgres_url() -> None:
    assert is_postgres_url("postgresql://h/db") and is_postgres_url("POSTGRES://h/db")
    assert not is_postgres_url("mysql://h/db") and not is_postgres_url(None)
    assert not is_postgres_url("postgresql:/h/db")


# -- store: precedence, sources, refusals ------------------------------------------------


def test_store_default_is_the_heartbeat_directory(tmp_path: Path) -> None:
    config = resolve_config(Flags(root=str(tmp_path)), {}, tmp_path, no_git)
    assert config.store.value is None
    assert config.store.source == "default (the heartbeat directory)"
    assert config.project.value is None  # the directory needs no project key
    assert (config.schema.value, config.schema.source) == ("heartbeat", "default")
    assert isinstance(open_store(config), DirectoryStore)


def test_store_flag_beats_env_beats_directives(tmp_path: Path) -> None:
    directives(tmp_path, "session_tracking:\n  store: postgresql://d/db\n  project: p\n")
    env = {"HEARTBEAT_STORE": "postgres://e/db"}
    by_directives = resolve_config(Flags(root=str(tmp_path)), {}, tmp_path, no_git)
    assert (by_directives.store.value, by_directives.store.source) == (
        "postgresql://d/db",
        "directives session_tracking.store",
    )
    by_env = resolve_config(Flags(root=str(tmp_path)), env, tmp_path, no_git)
    assert (by_env.store.value, by_env.store.source) == ("postgres://e/db", "env HEARTBEAT_STORE")
    by_flag = resolve_config(
        Flags(root=str(tmp_path), store="postgresql://f/db"), env, tmp_path, no_git
    )
    assert (by_flag.store.value, by_flag.store.source) == ("postgresql://f/db", "flag --store")
    # An empty variable is "not given", as for every other setting.
    assert resolve_config(
        Flags(root=str(tmp_path)), {"HEARTBEAT_STORE": ""}, tmp_path, no_git
    ).store.source == ("directives session_tracking.store")


@pytest.mark.parametrize(
    "url", [f"mysql://app:{SECRET}@h/db", "sqlite:///x.db", "directory://", "x"]
)
def test_other_schemes_are_refused_naming_what_is_accepted_without_the_password(
    tmp_path: Path, url: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_config(Flags(root=str(tmp_path), store=url), {}, tmp_path, no_git)
    message = str(caught.value)
    assert "postgresql://" in message and "postgres://" in message and "flag --store" in message
    assert SECRET not in message


def test_a_mysql_password_never_reaches_the_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_config(
            Flags(root=str(tmp_path)), {"HEARTBEAT_STORE": f"mysql://u:{SECRET}@h/d"}, tmp_path
        )
    assert SECRET not in str(caught.value) and "'mysql://u@h/d'" in str(caught.value)


def test_describe_and_repr_show_the_url_without_its_password(tmp_path: Path) -> None:
    config = resolve_config(
        Flags(root=str(tmp_path), store=URL), {"HEARTBEAT_PROJECT": "acme/shop"}, tmp_path, no_git
    )
    assert config.store.value == URL  # the store itself gets the password
    shown = config.describe()
    assert shown["store"].value == "postgresql://app@db.example.com:5432/shop?sslmode=require"
    assert shown["store"].source == "flag --store"
    assert (shown["project"].value, shown["project"].source) == (
        "acme/shop",
        "env HEARTBEAT_PROJECT",
    )
    assert SECRET not in repr(shown) and SECRET not in repr(config)


# -- schema -------------------------------------------------------------------------------


def test_schema_env_beats_directives(tmp_path: Path) -> None:
    directives(tmp_path, "session_tracking:\n  schema: team_hb\n")
    config = resolve_config(Flags(root=str(tmp_path)), {}, tmp_path, no_git)
    assert (config.schema.value, config.schema.source) == (
        "team_hb",
        "directives session_tracking.schema",
    )
    config = resolve_config(Flags(root=str(tmp_path)), {"HEARTBEAT_SCHEMA": "hb2"}, tmp_path)
    assert (config.schema.value, config.schema.source) == ("hb2", "env HEARTBEAT_SCHEMA")


@pytest.mark.parametrize("name", ["Heartbeat", "1hb", 'hb"; drop schema x', "hb-x", "a" * 64, ""])
def test_a_schema_name_outside_the_identifier_pattern_is_refused(tmp_path: Path, name: str) -> None:
    directives(tmp_path, f"session_tracking:\n  schema: '{name}'\n")
    with pytest.raises(ConfigError, match=r"schema .* is not accepted"):
        resolve_config(Flags(root=str(tmp_path)), {}, tmp_path, no_git)


# -- project key --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("git@github.com:Acme/Shop.git", "github.com/Acme/Shop"),
        ("https://user:tok@github.com/Acme/Shop", "github.com/Acme/Shop"),
        ("https://ghp_token@GitHub.com/Acme/Shop.git/", "github.com/Acme/Shop"),
        ("ssh://git@github.com:22/Acme/Shop.git", "github.com/Acme/Shop"),
        ("git+https://github.com/Acme/Shop", "github.com/Acme/Shop"),
        ("user:pw@GITLAB.example.com:group/sub/proj.git", "gitlab.example.com/group/sub/proj"),
        (
            "https://gitlab.example.com/group/sub/proj.git?x=1#y",
            "gitlab.example.com/group/sub/proj",
        ),
        ("https://[::1]:8443/repo.git", "[::1]/repo"),
        ("/srv/git/shop.git", "/srv/git/shop"),
        ("file:///srv/git/shop.git/", "/srv/git/shop"),
        ("../shop.git", "../shop"),
    ],
)
def test_remote_urls_normalise_to_one_key(remote: str, key: str) -> None:
    assert normalise_remote(remote) == key
    assert "tok" not in key and "pw" not in key


def test_nothing_left_is_no_key() -> None:
    assert normalise_remote("https://") is None and normalise_remote("") is None


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    main = tmp_path / "main"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    (main / "f").write_text("x")
    git(main, "add", "f")
    git(main, "commit", "-q", "-m", "first")
    return main


def test_project_is_derived_only_for_a_postgres_store(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "git@github.com:Acme/Shop.git")
    directory = resolve_config(Flags(root=str(repo)), {}, repo)
    assert directory.project.value is None
    team = resolve_config(Flags(root=str(repo), store="postgresql://h/db"), {}, repo)
    assert (team.project.value, team.project.source) == (
        "github.com/Acme/Shop",
        "git remote, normalised",
    )
    directives(repo, "session_tracking:\n  project: shop\n")
    given = resolve_config(Flags(root=str(repo), store="postgresql://h/db"), {}, repo)
    assert (given.project.value, given.project.source) == (
        "shop",
        "directives session_tracking.project",
    )
    env = resolve_config(
        Flags(root=str(repo), store="postgresql://h/db"), {"HEARTBEAT_PROJECT": "e"}, repo
    )
    assert (env.project.value, env.project.source) == ("e", "env HEARTBEAT_PROJECT")


@pytest.mark.parametrize("value", ["''", "'  '", "[a]", '"a\\tb"', "x" * 513])
def test_a_bad_project_key_is_refused(tmp_path: Path, value: str) -> None:
    directives(tmp_path, f"session_tracking:\n  project: {value}\n")
    with pytest.raises(ConfigError, match=r"project .* is not accepted"):
        resolve_config(Flags(root=str(tmp_path)), {}, tmp_path, no_git)


def test_worktrees_and_clones_of_one_repository_share_one_key(repo: Path, tmp_path: Path) -> None:
    store = Flags(store="postgresql://h/db")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(worktree), "-b", "feature")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))

    def key(where: Path) -> tuple[str, str]:
        config = resolve_config(Flags(root=str(where), store=store.store), {}, where)
        return config.project.value, config.project.source

    # No remote in main; the clone's origin is a local path: remove it, so both fall
    # back to the root commit, which every clone shares.
    git(clone, "remote", "remove", "origin")
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    assert key(repo) == key(worktree) == key(clone) == (f"root-commit:{first}", "git root commit")

    # With remotes spelled differently (scp form vs https with a token): one key.
    git(repo, "remote", "add", "origin", "git@github.com:Acme/Shop.git")
    git(clone, "remote", "add", "origin", "https://user:tok@github.com/Acme/Shop")
    assert (
        key(repo)
        == key(worktree)
        == key(clone)
        == (
            "github.com/Acme/Shop",
            "git remote, normalised",
        )
    )
    # A worktree subdirectory and the main checkout's subdirectory agree too.
    (worktree / "sub").mkdir()
    assert key(worktree / "sub")[0] == "github.com/Acme/Shop"


def test_scope_worktree_keys_each_worktree_apart(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", "git@github.com:Acme/Shop.git")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(worktree), "-b", "feature")
    flags = Flags(root=str(worktree), store="postgresql://h/db", scope="worktree")
    config = resolve_config(flags, {}, worktree)
    assert config.project.value == f"github.com/Acme/Shop#worktree={worktree.resolve()}"


def test_outside_git_the_root_path_is_the_last_resort(tmp_path: Path) -> None:
    config = resolve_config(Flags(root=str(tmp_path), store="postgresql://h/db"), {}, tmp_path)
    assert config.project.value == f"path:{tmp_path.resolve()}"
    assert "last resort" in config.project.source


def test_a_repository_without_commits_or_remote_falls_back_to_the_path(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    key, source = derive_project(tmp_path, tmp_path, per_worktree=False, allow_git=True)
    assert key == f"path:{tmp_path}" and "last resort" in source
    calls: list[Path] = []
    key, _ = derive_project(
        tmp_path,
        tmp_path,
        per_worktree=False,
        allow_git=False,
        first_commit=lambda p: calls.append(p) or "abc",  # type: ignore[func-returns-value]
    )
    assert calls == [] and key.startswith("path:")  # no git run unless allowed


# -- open_store chooses PostgreSQL by the URL ---------------------------------------------


class FakePostgresStore(MemoryStore):
    """Stands in for store/postgres's PostgresStore: records how it was built."""

    built: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    migrated = 0

    def __init__(self, url: str, project: str, **options: Any) -> None:
        super().__init__()
        FakePostgresStore.built.append(((url, project), options))
        self._location = f"{redact_url(url)}#{project}"

    @property
    def location(self) -> str:
        return self._location

    def migrate(self) -> int:
        FakePostgresStore.migrated += 1
        return 3

    def close(self) -> None:
        pass


@pytest.fixture
def fake_postgres(monkeypatch: pytest.MonkeyPatch) -> type[FakePostgresStore]:
    module = types.ModuleType("mcp_server_heartbeat.store.postgres")
    module.PostgresStore = FakePostgresStore  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mcp_server_heartbeat.store.postgres", module)
    FakePostgresStore.built = []
    FakePostgresStore.migrated = 0
    return FakePostgresStore


def test_open_store_builds_the_postgres_store_as_the_interface_says(
    tmp_path: Path, fake_postgres: type[FakePostgresStore]
) -> None:
    env = {"HEARTBEAT_PROJECT": "acme/shop", "HEARTBEAT_SCHEMA": "team"}
    config = resolve_config(Flags(root=str(tmp_path), store=URL), env, tmp_path, no_git)
    clock = MemoryStore().now
    store = open_store(config, clock=clock, lock_timeout=2.5)
    assert isinstance(store, FakePostgresStore)
    assert fake_postgres.built == [
        ((URL, "acme/shop"), {"schema": "team", "clock": clock, "lock_timeout": 2.5})
    ]
    open_store(config)
    assert fake_postgres.built[-1][1] == {"schema": "team"}  # the store's own defaults
    # The directory stays reachable by URL, and is the default.
    assert isinstance(open_store(config, url="directory://"), DirectoryStore)
    assert open_light_reader(config, url="directory://").session_records() == []


def test_the_directory_store_never_imports_the_postgres_backend(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path;"
        "from mcp_server_heartbeat.host.config import Flags, resolve_config;"
        "from mcp_server_heartbeat.store import open_store, open_light_reader;"
        f"c = resolve_config(Flags(root={str(tmp_path)!r}), {{}}, Path({str(tmp_path)!r}));"
        "open_store(c); open_light_reader(c);"
        "print(sorted(m for m in sys.modules if 'psycopg' in m or m.endswith('store.postgres')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_session_info_shows_the_store_without_its_password(
    tmp_path: Path, fake_postgres: type[FakePostgresStore]
) -> None:
    runtime = open_runtime(
        Flags(root=str(tmp_path), session_id="s-team"),
        {"HEARTBEAT_STORE": URL, "HEARTBEAT_PROJECT": "acme/shop"},
        tmp_path,
    )
    runtime.handle_signals = runtime.watch_parent = False
    assert isinstance(runtime.store, FakePostgresStore)
    async with Client(build_app(runtime)) as client:
        result = await client.call_tool("session_info", {})
    assert not result.is_error and result.structured_content is not None
    config = result.structured_content["config"]
    assert config["store"] == {
        "value": "postgresql://app@db.example.com:5432/shop?sslmode=require",
        "source": "env HEARTBEAT_STORE",
    }
    assert config["project"]["value"] == "acme/shop"
    assert SECRET not in repr(result.model_dump())
