"""A tiny declarative validator: field specs that check JSON values before anything is built."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import errors
from .errors import ProtocolError


@dataclass(frozen=True)
class Spec:
    """How one JSON field must look. ``kind`` is str/int/float/bool/list/dict or a message class."""

    name: str
    kind: Any
    required: bool = False
    default: Any = None
    nullable: bool = False
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    max_len: int | None = None
    item: Any = None  # element kind of a list, value kind of a dict
    pattern: str | None = None  # allowed characters of a string (of each string of a list)
    item_len: int | None = None  # longest string in a list
    feature: str | None = None  # written only when not at its default: a feature the peer advertised


def describe_chars(chars: str) -> str:
    """``[A-Za-z0-9._:-]`` for a set of allowed characters."""
    ranges = [(a, z) for a, z in (("A", "Z"), ("a", "z"), ("0", "9")) if a in chars and z in chars]
    rest = "".join(c for c in chars if not any(a <= c <= z for a, z in ranges))
    return "[" + "".join(f"{a}-{z}" for a, z in ranges) + "".join(sorted(rest, key=lambda c: c == "-")) + "]"


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "an object"}


def _where(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def check_value(spec: Spec, value: Any, path: str) -> Any:
    """Validate one value against ``spec``; return the Python value to store."""
    where = _where(path, spec.name)
    if value is None:
        if spec.nullable:
            return None
        raise ProtocolError(errors.BAD_TYPE, f"'{where}' must not be null", where)
    return _check_kind(spec, spec.kind, value, where)


def _check_kind(spec: Spec, kind: Any, value: Any, where: str) -> Any:
    if hasattr(kind, "from_dict"):
        if not isinstance(value, dict):
            raise ProtocolError(errors.BAD_TYPE, f"'{where}' must be an object", where)
        return kind.from_dict(value, path=where)
    if kind is bool:
        if not isinstance(value, bool):
            raise ProtocolError(errors.BAD_TYPE, f"'{where}' must be true or false", where)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(errors.BAD_TYPE, f"'{where}' must be an integer", where)
        _check_range(spec, value, where)
        if spec.choices is not None and value not in spec.choices:
            allowed = ", ".join(map(str, spec.choices))
            raise ProtocolError(errors.OUT_OF_RANGE, f"'{where}' must be one of: {allowed} (got {value})", where)
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(errors.BAD_TYPE, f"'{where}' must be a number", where)
        if isinstance(value, int) and abs(value) > 2**1023:
            raise ProtocolError(errors.OUT_OF_RANGE, f"'{where}' is too large for a number", where)
        if not math.isfinite(value):
            raise ProtocolError(errors.NOT_FINITE, f"'{where}' must be a finite number", where)
        _check_range(spec, value, where)
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ProtocolError(errors.BAD_TYPE, f"'{where}' must be a string", where)
        if spec.max_len is not None and len(value) > spec.max_len:
            raise ProtocolError(errors.TOO_LONG, f"'{where}' is longer than {spec.max_len} characters", where)
        try:
            value.encode("utf-8")  # JSON "\ud800" parses to a lone surrogate, which is no text
        except UnicodeEncodeError:
            raise ProtocolError(errors.BAD_VALUE, f"'{where}' contains a lone UTF-16 surrogate (not valid text)",
                                where) from None
        if spec.pattern is not None and (not value or any(c not in spec.pattern for c in value)):
            raise ProtocolError(errors.BAD_VALUE, f"'{where}' must be 1+ characters of "
                                f"{describe_chars(spec.pattern)}", where)
        if spec.choices is not None and value not in spec.choices:
            allowed = ", ".join(map(str, spec.choices))
            raise ProtocolError(errors.BAD_VALUE, f"'{where}' must be one of: {allowed} (got {value!r})", where)
        return value
    if kind is list:
        if not isinstance(value, list):
            raise ProtocolError(errors.BAD_TYPE, f"'{where}' must be a list", where)
        if spec.max_len is not None and len(value) > spec.max_len:
            raise ProtocolError(errors.TOO_LONG, f"'{where}' has more than {spec.max_len} items", where)
        item = Spec(spec.name, spec.item, lo=spec.lo, hi=spec.hi, choices=spec.choices, pattern=spec.pattern,
                    max_len=spec.item_len)
        return tuple(_check_kind(item, spec.item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is dict:
        if not isinstance(value, dict):
            raise ProtocolError(errors.BAD_TYPE, f"'{where}' must be an object", where)
        if spec.max_len is not None and len(value) > spec.max_len:
            raise ProtocolError(errors.TOO_LONG, f"'{where}' has more than {spec.max_len} entries", where)
        item = Spec(spec.name, spec.item, lo=spec.lo, hi=spec.hi, max_len=64)
        return {k: _check_kind(item, spec.item, v, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"unsupported spec kind {kind!r}")  # a bug in a spec, not bad input


def _check_range(spec: Spec, value: float, where: str) -> None:
    if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
        if spec.hi is None:
            bound = f"at least {spec.lo}"
        elif spec.lo is None:
            bound = f"at most {spec.hi}"
        else:
            bound = f"between {spec.lo} and {spec.hi}"
        raise ProtocolError(errors.OUT_OF_RANGE, f"'{where}' must be {bound} (got {value})", where)


def parse_fields(specs: tuple[Spec, ...], data: dict[str, Any], path: str, ignore: tuple[str, ...] = ()) -> dict:
    """Check every field of ``data`` against ``specs``: unknown, missing, wrong type, out of range."""
    known = {s.name for s in specs}
    for key in data:
        if key not in known and key not in ignore:
            where = _where(path, str(key))
            raise ProtocolError(errors.UNKNOWN_FIELD, f"unknown field '{where}'", where)
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.name in data:
            out[spec.name] = check_value(spec, data[spec.name], path)
        elif spec.required:
            where = _where(path, spec.name)
            raise ProtocolError(errors.MISSING_FIELD, f"missing field '{where}'", where)
        else:
            default = spec.default
            out[spec.name] = default() if callable(default) else default
    return out


def to_json_value(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    return value
