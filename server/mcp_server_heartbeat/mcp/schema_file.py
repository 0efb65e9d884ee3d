"""Regenerate ``tool_schemas.json`` (:mod:`.schemas`) from the models::

    python -m mcp_server_heartbeat.mcp.schema_file

``tests/test_tool_schemas.py`` fails until the committed file equals :func:`generate`.
"""

from __future__ import annotations

from typing import Any

from .schemas import SCHEMA_FILE, generating, render, schemas_of
from .tools import TAGS_SCHEMA, build_tools


def generate() -> dict[str, dict[str, Any]]:
    """The schema file's content as the current models generate it (the file is ignored)."""
    with generating():
        return schemas_of(build_tools(TAGS_SCHEMA))


def main() -> None:
    """Rewrite ``tool_schemas.json`` from the models."""
    SCHEMA_FILE.write_text(render(generate()), encoding="utf-8")


if __name__ == "__main__":
    main()


__all__ = ["generate", "main"]
