"""Session tags (seed: session-tracking codex, section 9): a kind and at most
two topics, in lowercase kebab-case, checked against the project's vocabulary."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pydantic import ValidationError

from .errors import InvalidInputError
from .models import Tags
from .validation import MAX_KIND_CHARS, MAX_TOPIC_CHARS, shorten, validate_kebab


def parse_tags(tags: object, kinds: Collection[str] | None = None) -> Tags:
    """Validate tags (seed: session-tracking codex, section 9).

    Accepted: ``{"kind": "feature", "topics": ["auth", "review-loop"]}`` — kind
    optional, lowercase kebab-case of at most 40 characters and, when ``kinds``
    is given (``session_tracking.tags.kinds`` in ``.ahrena/.directives``), one
    of them; 0 to 2 topics, each lowercase kebab-case of at most 20 characters.

    Raises:
        InvalidInputError: anything else (a flat list, extra keys, wrong types,
            a kind outside the vocabulary); the message says what is accepted.
    """
    if isinstance(tags, Tags):
        tags = tags.model_dump()
    if not isinstance(tags, Mapping):
        raise InvalidInputError(
            'tags must be an object like {"kind": "feature", "topics": ["auth"]}, '
            f"not a {type(tags).__name__}"
        )
    extra = sorted(set(tags) - {"kind", "topics"})
    if extra:
        raise InvalidInputError(
            f"tags has unknown keys {extra}: only 'kind' and 'topics' are accepted"
        )
    topics = tags.get("topics", [])
    if not isinstance(topics, list) or len(topics) > 2:
        raise InvalidInputError(
            'tags.topics must be a list of at most 2 topics, e.g. ["auth", "review-loop"] '
            f"(leave it out for none), not {shorten(topics)}"
        )
    kind = tags.get("kind")
    if kind is not None and kinds is not None and kind not in kinds:
        raise InvalidInputError(
            f"tags.kind {kind!r} is not in this project's vocabulary "
            f"(.ahrena/.directives session_tracking.tags.kinds): use one of {', '.join(kinds)}"
        )
    try:
        return Tags(
            kind=None if kind is None else validate_kebab(kind, "tags.kind", MAX_KIND_CHARS),
            topics=[validate_kebab(t, "tags.topics[]", MAX_TOPIC_CHARS) for t in topics],
        )
    except ValidationError as exc:  # pragma: no cover - guarded above
        raise InvalidInputError(f"tags are not accepted: {exc.errors()[0]['msg']}") from exc


__all__ = ["parse_tags"]
