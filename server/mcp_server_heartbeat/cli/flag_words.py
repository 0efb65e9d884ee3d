"""Command lines of value flags only, read as ``argparse`` reads them, without
importing it (the server's start and the status line skip the parser when
they can; anything else goes to the parser, which decides and reports)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the status line imports this module: no typing
    from collections.abc import Collection, Sequence


def value_flags(words: Sequence[str], accepted: Collection[str]) -> dict[str, str] | None:
    """``{name: value}`` for ``words`` made only of flags in ``accepted`` (spelt in
    full, e.g. ``--dir``), each as ``--dir X`` or ``--dir=X``; the name is the
    flag without ``--`` and with ``_`` for ``-`` (``--stale-after`` ->
    ``stale_after``), and the last one given wins, as with the parser.

    None when ``words`` holds anything else (an abbreviation, ``--help``, a
    positional word) or a flag whose separate value is missing or starts with
    ``-`` (the parser might read it otherwise): the caller then builds the
    parser.
    """
    given: dict[str, str] = {}
    i = 0
    while i < len(words):
        name, equals, value = words[i].partition("=")
        if name not in accepted:
            return None
        if not equals:
            if i + 1 >= len(words) or words[i + 1].startswith("-"):
                return None
            value = words[i + 1]
            i += 1
        given[name[2:].replace("-", "_")] = value
        i += 1
    return given


__all__ = ["value_flags"]
