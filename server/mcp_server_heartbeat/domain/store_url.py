"""Store URLs without secrets: the one rule for showing a PostgreSQL URL.

A store URL (``postgresql://user:password@host:5432/db?sslmode=require``) may
carry a password in its user part or in a ``password=`` query parameter (libpq
accepts both), and a libpq keyword string (``host=db password=x``) may carry
one too. Whatever is shown of it — ``describe()``, ``session_info``, the
store's ``location``, a log line, an error message — goes through
:func:`redact_url` first. Pure string work: no parsing library that could
raise on a malformed URL and echo it back.
"""

from __future__ import annotations

import re

POSTGRES_SCHEMES = ("postgresql", "postgres")
"""The URL schemes of a PostgreSQL store (libpq's two spellings)."""

_KEYWORD_PASSWORD = r"""\bpassword\s*=\s*(?:'(?:[^'\\]|\\.)*'|\S*)"""
"""A ``password=`` pair of a libpq keyword string (compiled on first use)."""


def is_postgres_url(url: object) -> bool:
    """True when ``url`` is a string starting ``postgresql://`` or ``postgres://``
    (scheme case-insensitive)."""
    if not isinstance(url, str):
        return False
    return url.lower().startswith(tuple(f"{scheme}://" for scheme in POSTGRES_SCHEMES))


def redact_url(url: str) -> str:
    """``url`` without its password: the ``:password`` of the user part and every
    ``password=`` query parameter are removed (so is a fragment); the scheme,
    user, hosts, ports, database and other parameters are kept.

    ``postgresql://app:s3cret@db:5432/shop?sslmode=require&password=x`` ->
    ``postgresql://app@db:5432/shop?sslmode=require``. A libpq keyword string
    (no ``://``) loses its ``password=...`` pairs. Never raises.
    """
    if "://" not in url:
        return " ".join(re.sub(_KEYWORD_PASSWORD, "", url, flags=re.IGNORECASE).split())
    scheme, rest = url.split("://", 1)
    rest = rest.split("#", 1)[0]
    # The user part ends at the last "@" before the query (a password may hold "@" or "/").
    head, question, query = rest.partition("?")
    user_part, at, location = head.rpartition("@")
    if at:
        user = user_part.split(":", 1)[0]
        head = f"{user}@{location}" if user else location
    if question:
        kept = [
            pair
            for pair in query.split("&")
            if pair and pair.split("=", 1)[0].strip().lower() != "password"
        ]
        query = "&".join(kept)
    return f"{scheme}://{head}" + (f"?{query}" if query else "")


__all__ = ["POSTGRES_SCHEMES", "is_postgres_url", "redact_url"]
