"""Telemetry payload v1: JSON, one machine per message, one or more samples per message.

Several samples per message let a gateway replay its outbox in large messages; a live
poll sends one. Timestamps are the source time of the poll in Unix epoch milliseconds
(integers, so JavaScript clients read them exactly).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from plant import IDENTIFIER_PATTERN, MachineRef
from wire.topics import parse_telemetry_topic

#: Larger messages are refused before parsing; 1 MiB holds thousands of samples.
MAX_PAYLOAD_BYTES = 1024 * 1024
#: 2000-01-01 .. 2100-01-01: outside it a timestamp is in seconds or µs by mistake.
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 4_102_444_800_000

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Value = Union[StrictBool, StrictInt, FiniteFloat, Annotated[StrictStr, Field(max_length=256)]]
ScalarValue = bool | int | float | str


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: Annotated[StrictInt, Field(ge=MIN_TS_MS, lt=MAX_TS_MS, description="source time, epoch ms")]
    values: Annotated[dict[Identifier, Value], Field(min_length=1, max_length=10_000)]


class Telemetry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    tenant: Identifier
    samples: Annotated[list[Sample], Field(min_length=1, max_length=100_000)]

    @field_validator("v", mode="before")
    @classmethod
    def _integer_version(cls, v: object) -> object:
        # Literal is checked leniently (true and 1.0 would pass as 1); the version is an integer.
        if type(v) is not int:
            raise ValueError("the contract version must be the integer 1")
        return v


class WireError(ValueError):
    """A message that breaks the contract; ``reason`` is a short stable code for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encode_telemetry(machine: MachineRef, samples: Sequence[tuple[int, Mapping[str, ScalarValue]]]) -> bytes:
    """Serialise samples of one machine; raises ValueError on NaN/inf (never on the wire)."""
    body = {
        "v": 1,
        "tenant": machine.tenant,
        "samples": [{"ts": ts, "values": dict(values)} for ts, values in samples],
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def decode_telemetry(topic: str, payload: bytes) -> tuple[MachineRef, Telemetry]:
    """Validate one message against the contract.

    Every rejection is a WireError whose reason is one of: ``oversized``, ``topic``,
    ``schema`` (includes invalid JSON, NaN and infinity), ``tenant_mismatch``.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError("oversized", f"{len(payload)} bytes > limit {MAX_PAYLOAD_BYTES}")
    try:
        machine = parse_telemetry_topic(topic)
    except ValueError as exc:
        raise WireError("topic", str(exc)) from None
    try:
        message = Telemetry.model_validate_json(payload)
    except ValidationError as exc:
        raise WireError("schema", _summarise(exc)) from None
    if message.tenant != machine.tenant:
        raise WireError(
            "tenant_mismatch", f"payload tenant {message.tenant!r} differs from topic tenant {machine.tenant!r}"
        )
    return machine, message


def _summarise(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "(message)"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
