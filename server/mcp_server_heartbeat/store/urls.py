"""Store URLs: which backend a URL names, and the URL as it may be shown.

:func:`redact_url` removes the password (user part and ``password=`` query
parameter) from a store URL; :func:`is_postgres_url` tells a PostgreSQL URL
(``postgresql://`` or ``postgres://``). The rule lives in the domain
(:mod:`~mcp_server_heartbeat.domain.store_url`) so the configuration can use it
too; this is the store package's name for it.
"""

from __future__ import annotations

from ..domain.store_url import POSTGRES_SCHEMES, is_postgres_url, redact_url

__all__ = ["POSTGRES_SCHEMES", "is_postgres_url", "redact_url"]
