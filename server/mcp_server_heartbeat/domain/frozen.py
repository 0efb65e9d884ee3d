"""Small immutable value classes without ``dataclasses``.

The status line runs on every refresh of Claude Code's prompt and ``status`` is
typed by people waiting for it: importing ``dataclasses`` (which loads
``inspect``, ``ast``, ``dis`` and ``tokenize``) costs them more than their
whole work. The value classes they share with the server (the configuration,
the observer, the thresholds, a repository's place) derive from
:class:`Frozen` instead, which gives what ``@dataclass(frozen=True)`` gave
them: fields declared as annotated class attributes (a default is the
attribute's value), an ``__init__`` taking them by position or keyword,
``__repr__``, ``__eq__`` and ``__hash__`` over the fields, instances that
cannot be changed, and :meth:`Frozen.replace` for ``dataclasses.replace``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, Self, dataclass_transform
else:

    def dataclass_transform(**_: object) -> object:
        return lambda cls: cls


_MISSING = object()


@dataclass_transform(eq_default=True, frozen_default=True)
class Frozen:
    """Base of an immutable value class (see module doc).

    A subclass's own annotations, in order, are its fields after those of its
    bases; an annotation spelt ``ClassVar[...]`` is not a field. A field
    without a default may not follow one with a default (as for a dataclass).
    Instances keep their fields in ``__dict__``; assigning or deleting an
    attribute raises AttributeError. Two instances are equal when they are of
    the same class and their fields are equal; the hash is that of the fields.
    """

    __slots__ = ()
    FIELDS: ClassVar[tuple[str, ...]] = ()
    """The field names, in order."""
    _FIELD_SET: ClassVar[frozenset[str]] = frozenset()
    _DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = list(cls.FIELDS)
        own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - inspect is what we avoid
        for name, annotation in own.items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                continue
            if hasattr(Frozen, name):
                raise TypeError(f"{cls.__name__}: field {name!r} would hide Frozen.{name}")
            if name not in fields:
                fields.append(name)
        defaults = {}
        for name in fields:
            value = getattr(cls, name, _MISSING)
            if value is not _MISSING:
                defaults[name] = value
            elif defaults:
                raise TypeError(f"{cls.__name__}: non-default field {name!r} follows a default")
        cls.FIELDS = tuple(fields)
        cls._FIELD_SET = frozenset(fields)
        cls._DEFAULTS = defaults

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self.FIELDS
        if args:
            if len(args) > len(fields):
                raise TypeError(
                    f"{type(self).__name__}() takes {len(fields)} positional arguments "
                    f"but {len(args)} were given"
                )
            for field, value in zip(fields, args, strict=False):
                if field in kwargs:
                    raise TypeError(
                        f"{type(self).__name__}() got multiple values for argument {field!r}"
                    )
                kwargs[field] = value
        if len(kwargs) != len(fields) or not self._FIELD_SET.issuperset(kwargs):
            self._complete(kwargs)
        own = self.__dict__
        for field in fields:
            own[field] = kwargs[field]

    def _complete(self, given: dict[str, Any]) -> None:
        """Add the defaults of the fields not ``given``; TypeError for a name that
        is no field or a field without a default that is missing."""
        name = type(self).__name__
        for key in given:
            if key not in self._FIELD_SET:
                raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
        for field in self.FIELDS:
            if field not in given:
                if field not in self._DEFAULTS:
                    raise TypeError(f"{name}() missing required argument: {field!r}")
                given[field] = self._DEFAULTS[field]

    def _values(self) -> tuple[Any, ...]:
        own = self.__dict__
        return tuple(own[field] for field in self.FIELDS)

    def __repr__(self) -> str:
        shown = ", ".join(f"{field}={value!r}" for field, value in self._fields_and_values())
        return f"{type(self).__qualname__}({shown})"

    def _fields_and_values(self) -> zip[tuple[str, Any]]:
        return zip(self.FIELDS, self._values(), strict=True)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (field name -> value), as ``dataclasses.replace``.

        Raises:
            TypeError: a name that is not a field.
        """
        return type(self)(**{**dict(self._fields_and_values()), **changes})


__all__ = ["Frozen"]
