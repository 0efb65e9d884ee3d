"""Store URLs shown to a person: never with their password.

A ``postgresql://user:secret@host/db?password=secret`` URL is shown as
``postgresql://user@host/db``: the password is dropped from the user info
and from the query (``password=``), whatever else the URL carries.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """``url`` without its password (user info and ``password=`` query parameter).

    A string that is not a URL with ``://`` is returned as given (a directory path).
    """
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{hostport}" if user else hostport
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


__all__ = ["redact_url"]
