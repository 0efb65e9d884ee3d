"""The stores' name-safety check: a name is safe as a file name, a key, a row id.

Design invariant 4: nothing is ever written, followed or deleted outside the
heartbeat directory. Ids are validated once, at the edge (:mod:`...domain.ids`);
this is the store's own cheap assertion, made where a name becomes a path,
so that a caller that skipped the edge still cannot name a file elsewhere.
A safe name is a valid id (``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``): no ``/``,
no leading dot (so no ``..`` and no hidden files), ASCII only.
"""

from __future__ import annotations

from ..domain.validation import id_refused, is_id


def safe_stem(name: str, field: str) -> str:
    """Return ``name`` when ``<name>.json`` is a plain file name inside the directory.

    Raises:
        InvalidInputError: it is not (the message names ``field``, the value and the rule).
    """
    if is_id(name):
        return name
    raise id_refused(name, field)


__all__ = ["safe_stem"]
