"""Parsing records from mappings or JSON, and exporting their JSON Schemas.

``parse_record`` is the one way in for untrusted input: it reports every problem by field path
and never echoes a value, since values may be a user's identifiers or content.
``parse_stored_record`` reads a record back from a log, where rules added since it was stored
(a subject that is not blank) are not applied: records written under older rules still read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from auditlog.errors import ConfigurationError, RecordValidationError
from auditlog.records.fields import _STORED
from auditlog.records.kinds import RecordKind
from auditlog.records.models import RECORD_TYPES, Record

__all__ = ["parse_record", "parse_stored_record", "record_json_schema"]

_RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)

# Field names are safe to show; a key that does not look like one may be user data.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_KINDS_TEXT: Final = ", ".join(repr(str(kind)) for kind in RecordKind)


def _describe(error: ErrorDetails) -> tuple[str, str]:
    """(field path, message) of one problem; neither holds the value at fault."""
    loc = list(error["loc"])
    # A tagged union puts the tag first in the location; the path reads better without it.
    if loc and loc[0] in RECORD_TYPES:
        loc = loc[1:]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        # Pydantic's own message quotes the tag it was given, which is input.
        return "kind", f"must be one of {_KINDS_TEXT}"
    parts = [
        str(part) if isinstance(part, int) or _FIELD_NAME.fullmatch(part) else "<field>"
        for part in loc
    ]
    return (".".join(parts) if parts else "(record)"), error["msg"]


def parse_record(data: Mapping[str, Any] | str | bytes) -> Record:
    """Validate ``data`` (a mapping, or a JSON document as text or bytes) into a record.

    Raises ``RecordValidationError`` listing each problem as ``field.path: message`` (its
    ``fields`` are the paths). The message never contains the offending values, which may be a
    user's identifiers or content.
    """
    return _parse(data, None)


def parse_stored_record(data: Mapping[str, Any]) -> Record:
    """``parse_record`` of a record read back from a log, which was valid when it was stored.

    Rules added since (a subject that is not blank) are not applied, so that records stored
    under older rules still read, verify and can be swept by subject.
    """
    return _parse(data, {_STORED: True})


def _parse(data: object, context: dict[str, Any] | None) -> Record:
    try:
        if isinstance(data, str | bytes):
            return _RECORD_ADAPTER.validate_json(data, context=context)
        if not isinstance(data, Mapping):
            raise RecordValidationError(
                f"(record): a record must be a mapping or a JSON document, not "
                f"{type(data).__name__}: pass a dict, or a JSON object as text or bytes",
                fields=("(record)",),
            )
        # Pydantic takes a dict as it is; other mappings (read-only views, ...) are copied.
        plain = data if type(data) is dict else dict(data)
        return _RECORD_ADAPTER.validate_python(plain, context=context)
    except ValidationError as exc:
        problems = exc.errors(include_input=False, include_url=False, include_context=False)
        described = [_describe(problem) for problem in problems]
        lines = "\n".join(f"  {path}: {message}" for path, message in described)
        noun = "problem" if len(problems) == 1 else "problems"
        raise RecordValidationError(
            f"invalid record, {len(problems)} {noun}:\n{lines}",
            fields=[path for path, _ in described],
        ) from None


def record_json_schema(kind: RecordKind | str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one kind of record, for validation outside Python."""
    try:
        model = RECORD_TYPES[RecordKind(kind)]
    except ValueError:
        raise ConfigurationError(f"unknown record kind; expected one of {_KINDS_TEXT}") from None
    return model.model_json_schema()
