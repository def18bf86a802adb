"""How a log is shaped (``LogConfig``, stored in its manifest) and how it flushes
(``GroupCommit``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["GroupCommit", "LogConfig"]

_ORIGIN: Final = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces: a C2SP origin


class LogConfig(BaseModel):
    """How a log shapes its chains. Stored in the manifest when the log is created."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    origin: str | None = Field(
        default=None,
        description="The log's name in checkpoints, e.g. 'example.com/auditlog'. No user data.",
    )
    period_seconds: int = Field(default=86_400, ge=60, le=366 * 86_400)
    max_segment_bytes: int = Field(default=64 << 20, ge=64 << 10, le=1 << 30)
    max_segment_records: int = Field(default=1_000_000, ge=1, le=1 << 32)
    block_max_records: int = Field(default=4096, ge=1, le=1 << 20)
    late_bound_seconds: int = Field(default=86_400, ge=0)
    dictionary_samples: int = Field(default=1000, ge=8, le=100_000)
    dictionary_bytes: int = Field(default=16 << 10, ge=1024, le=1 << 20)
    max_future_seconds: int = Field(default=300, ge=0, le=366 * 86_400)
    """How far ahead of the log's clock a record's ``occurred_at`` may be; a record dated
    further ahead is refused (``RecordValidationError``), since it would make every record after
    it look late. Absent from manifests written before it existed, which get the default."""

    @field_validator("origin")
    @classmethod
    def _check_origin(cls, value: str | None) -> str | None:
        if value is not None and not _ORIGIN.fullmatch(value):
            raise ValueError("an origin is 1-200 printable ASCII characters without spaces")
        return value


@dataclass(frozen=True, slots=True)
class GroupCommit:
    """Background flushing: a block is written once ``max_records`` wait or ``max_delay`` passed."""

    max_records: int = 4096
    max_delay: float = 0.005
