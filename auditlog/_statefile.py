"""The one way to read and write a versioned state file (manifest, holds, keyrings, journals, ...).

Each state file is a pydantic model deriving from ``StateFile``: its class says the file's
``format`` name, the ``version`` it reads and writes, its encoding (JSON or msgpack) and what
to do when the file is bad. ``read_state`` turns every way a file can be bad — missing,
unreadable, truncated, not JSON or msgpack, another format, an unknown version, a field of the
wrong shape — into one ``StateFileError`` that names the file and says what to do; nothing else
(KeyError, UnicodeDecodeError, TypeError, pydantic's ValidationError) reaches the caller.

Encodings are those the files have had since format v1, byte for byte: JSON with two-space
indent, sorted keys and a final newline; msgpack maps in field-declaration order.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

import msgpack
from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    model_validator,
)

from auditlog._fs import atomic_replace, create_exclusive
from auditlog.errors import StateFileError

__all__ = [
    "Base64Bytes",
    "StateFile",
    "create_state",
    "decode_state",
    "read_state",
    "state_bytes",
    "write_state",
]

S = TypeVar("S", bound="StateFile")


def _from_base64(value: object) -> bytes:
    # A file holds base64 text; code that makes a model passes the bytes themselves.
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None


Base64Bytes = Annotated[
    bytes,
    PlainValidator(_from_base64),
    PlainSerializer(lambda value: base64.b64encode(value).decode("ascii"), return_type=str),
]
"""Bytes stored in a JSON state file as standard base64 text."""


class StateFile(BaseModel):
    """A versioned state file. Subclasses set the class variables and declare their fields.

    The first two fields of every file are ``format`` (always ``FORMAT``) and ``version``
    (always ``VERSION``); both are filled in when a model is made without them.
    """

    # Unknown keys are ignored, as docs/format.md ("Versions and evolution") promises: maps may
    # gain keys without a new version. Models nested in a file may forbid them (the manifest's
    # config and policies, the holds).
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # The defaults are never stored: a model made without them gets FORMAT and VERSION.
    format: str = ""
    version: int = 0

    FORMAT: ClassVar[str]
    VERSION: ClassVar[int]
    ENCODING: ClassVar[Literal["json", "msgpack"]]
    WHAT: ClassVar[str]
    """What the file is, for messages: "the log's manifest"."""
    REMEDY: ClassVar[str] = "restore it from a backup"
    """What to do when the file is damaged."""
    JSON_ASCII: ClassVar[bool] = True
    """Whether JSON escapes non-ASCII characters (the witness files keep them as UTF-8)."""

    @model_validator(mode="before")
    @classmethod
    def _format_and_version(cls, data: Any) -> Any:
        if isinstance(data, dict) and "format" not in data and "version" not in data:
            return {"format": cls.FORMAT, "version": cls.VERSION, **data}
        return data

    @model_validator(mode="after")
    def _this_format_and_version(self) -> Self:
        if self.format != self.FORMAT or self.version != self.VERSION:
            raise ValueError(f"a {self.FORMAT} file of version {self.VERSION} was expected")
        return self


def state_bytes(state: StateFile) -> bytes:
    """The exact bytes of a state file."""
    if state.ENCODING == "json":
        doc = state.model_dump(mode="json", by_alias=True)
        text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=state.JSON_ASCII) + "\n"
        return text.encode("utf-8")
    packed: bytes = msgpack.packb(state.model_dump(mode="python", by_alias=True))
    return packed


def write_state(path: Path, state: StateFile, *, scrub_old: bool = True) -> None:
    """Replace the file at ``path`` with ``state``, atomically (a crash leaves old or new)."""
    atomic_replace(path, state_bytes(state), scrub_old=scrub_old)


def create_state(path: Path, state: StateFile) -> None:
    """Create the file at ``path`` holding ``state``; ``FileExistsError`` if it exists."""
    create_exclusive(path, state_bytes(state))


def read_state(path: Path, model: type[S]) -> S:
    """Read and check the state file at ``path``; ``StateFileError`` however it is bad."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _error(path, model, "is missing") from None
    except IsADirectoryError:
        raise _error(path, model, "is a directory, not a file") from None
    except OSError as exc:
        raise StateFileError(
            f"{model.WHAT} ({path}) cannot be read: {exc.strerror or exc}; check the file's "
            "owner and permissions (auditlog makes its files 0600, for the user who runs it)",
            path=path,
        ) from None
    return decode_state(raw, path, model)


def decode_state(raw: bytes, path: Path, model: type[S]) -> S:
    """Check the bytes of the state file at ``path`` (already read); as ``read_state``."""
    doc = _decode(raw, path, model)
    if not isinstance(doc, dict):
        raise _error(path, model, f"is not a {model.FORMAT} file")
    found_format = doc.get("format")
    if found_format != model.FORMAT:
        raise _error(path, model, f"is not a {model.FORMAT} file")
    version = doc.get("version")
    if version != model.VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version > model.VERSION:
            raise StateFileError(
                f"{model.WHAT} ({path}) has version {version}; this auditlog reads version "
                f"{model.VERSION}: upgrade auditlog",
                path=path,
            )
        raise _error(path, model, "has a version this auditlog does not know")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems = exc.errors(include_input=False, include_url=False, include_context=False)
        first = problems[0]
        where = ".".join(str(part) for part in first["loc"]) or "(file)"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise _error(path, model, f"is damaged: {where}: {first['msg']}{more}") from None


def _decode(raw: bytes, path: Path, model: type[StateFile]) -> Any:
    if model.ENCODING == "json":
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise _error(path, model, "is not UTF-8 text") from None
        except (ValueError, RecursionError):
            what = "is empty" if not raw.strip() else "is not valid JSON (truncated or damaged)"
            raise _error(path, model, what) from None
    try:
        return msgpack.unpackb(raw, strict_map_key=False)
    except (ValueError, TypeError, msgpack.FormatError, msgpack.StackError):
        what = (
            "is empty" if not raw else "is not a readable msgpack document (truncated or damaged)"
        )
        raise _error(path, model, what) from None


def _error(path: Path, model: type[StateFile], problem: str) -> StateFileError:
    return StateFileError(f"{model.WHAT} ({path}) {problem}: {model.REMEDY}", path=path)
