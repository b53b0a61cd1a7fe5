"""What every JSON control message is built from: ``Record``/``Message`` (encode, decode) and the field helpers
that attach a field's wire rules (``schema.Spec``) to a dataclass field.

``messages`` (jobs) and ``live_messages`` (live streams) both declare their classes with these; ``messages``
holds the decode tables of both."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

from .schema import Spec, parse_fields, to_json_value
from .vocabulary import FEATURE_CHARS, JOB_ID_CHARS, MAX_JOB_ID, Range


def wire(kind: Any, *, required: bool = False, default: Any = None, python_default: Any = None, **rules: Any) -> Any:
    """A dataclass field carrying its wire rules. ``python_default``: a field required on the wire that Python
    callers may leave out (the connection fills it in)."""
    spec = Spec("", kind, required=required, default=default, **rules)
    meta = {"spec": spec}
    if python_default is not None:
        return dataclasses.field(default_factory=python_default, metadata=meta)
    if required:
        return dataclasses.field(metadata=meta)
    if isinstance(default, type):
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def ranged(kind: Any, r: Range, **rules: Any) -> Any:
    """A number field whose default and bounds are a ``vocabulary.Range``."""
    return wire(kind, default=kind(r.default), lo=kind(r.lo), hi=kind(r.hi), **rules)


def names(max_len: int, pattern: str = FEATURE_CHARS, **rules: Any) -> Any:
    """A list of names (features, kinds) that may include names this version does not know."""
    return wire(list, item=str, pattern=pattern, item_len=64, max_len=max_len, **rules)


def job_id() -> Any:
    """A required job (or stream) id."""
    return wire(str, required=True, max_len=MAX_JOB_ID, pattern=JOB_ID_CHARS)


class Record:
    """Shared encode/decode for messages and their nested objects."""

    @classmethod
    def specs(cls) -> tuple[Spec, ...]:
        cached = cls.__dict__.get("_specs")
        if cached is None:
            cached = tuple(dataclasses.replace(f.metadata["spec"], name=f.name) for f in dataclasses.fields(cls))
            cls._specs = cached  # type: ignore[attr-defined]
        return cached

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "", ignore: tuple[str, ...] = ()) -> Any:
        return cls(**parse_fields(cls.specs(), data, path, ignore))

    def to_dict(self) -> dict[str, Any]:
        """Every field, except a feature-guarded one at its default (an older peer would not know it)."""
        out = {}
        for spec in self.specs():
            value = getattr(self, spec.name)
            if spec.feature is None or value != (spec.default() if callable(spec.default) else spec.default):
                out[spec.name] = to_json_value(value)
        return out


class Message(Record):
    TYPE: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, **super().to_dict()}

    def encode(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
