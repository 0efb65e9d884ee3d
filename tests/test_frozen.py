"""``domain.frozen.Frozen`` behaves as ``@dataclass(frozen=True)`` did for the
value classes that moved to it (configuration, observer, thresholds, a
repository's place): the same construction, repr, equality, hash and
immutability, and ``replace`` for ``dataclasses.replace``."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from mcp_server_heartbeat.domain.frozen import Frozen
from mcp_server_heartbeat.domain.liveness import Observer, Thresholds
from mcp_server_heartbeat.host.config import Config, Flags, Setting, StoreSetting


class Point(Frozen):
    x: int
    y: int = 0
    label: str | None = None


@dataclasses.dataclass(frozen=True)
class DataPoint:
    x: int
    y: int = 0
    label: str | None = None


def test_fields_defaults_and_construction() -> None:
    assert Point.FIELDS == ("x", "y", "label")
    assert Point(1).__dict__ == {"x": 1, "y": 0, "label": None}
    assert Point(1, 2, "a") == Point(x=1, y=2, label="a") == Point(1, label="a", y=2)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, "a", 4), {}), ((1,), {"x": 2}), ((1,), {"z": 2})],
    ids=["missing", "too many", "twice", "unknown"],
)
def test_wrong_arguments_raise_type_error_as_a_dataclass_does(args, kwargs) -> None:
    with pytest.raises(TypeError):
        DataPoint(*args, **kwargs)
    with pytest.raises(TypeError):
        Point(*args, **kwargs)


def test_repr_eq_and_hash_are_a_dataclasss() -> None:
    assert repr(Point(1, 2, "a")).replace("Point", "DataPoint") == repr(DataPoint(1, 2, "a"))
    assert Point(1) == Point(1) and Point(1) != Point(2)
    assert hash(Point(1, 2)) == hash(Point(1, 2)) == hash(DataPoint(1, 2))
    assert Point(1) != DataPoint(1)  # another class is never equal
    assert Setting(None, "x") != StoreSetting(None, "x")


def test_instances_cannot_be_changed() -> None:
    point = Point(1)
    with pytest.raises(AttributeError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.x  # type: ignore[misc]
    assert point.replace(y=5) == Point(1, 5) and point == Point(1)
    with pytest.raises(TypeError):
        point.replace(z=1)


def test_copies_and_pickles_keep_the_fields() -> None:
    point = Point(1, 2, "a")
    assert copy.copy(point) == point == copy.deepcopy(point)
    assert pickle.loads(pickle.dumps(point)) == point


def test_a_subclass_keeps_its_bases_fields_and_its_own_repr() -> None:
    assert StoreSetting.FIELDS == ("value", "source")
    shown = repr(StoreSetting("postgresql://u:secret@h/db", "env HEARTBEAT_STORE"))
    assert "secret" not in shown and shown.startswith("StoreSetting(value='postgresql://u@h/db'")


def test_the_value_classes_keep_their_dataclass_fields() -> None:
    assert Flags.FIELDS == (
        "root", "dir", "scope", "interval", "stale_after", "idle_after", "session_id", "store",
    )  # fmt: skip
    assert Thresholds() == Thresholds(300.0, 600.0)
    assert Observer("s", "h").boottime is not None
    assert Config.FIELDS[:6] == (
        "root", "directory", "interval", "stale_after", "idle_after", "enabled",
    )  # fmt: skip


def test_a_field_without_default_after_one_with_a_default_is_refused() -> None:
    with pytest.raises(TypeError):

        class Bad(Frozen):
            a: int = 0
            b: int
