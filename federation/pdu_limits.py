"""The spec's limits on what other servers send, as declarative models: the envelope of a
PDU and the body of `PUT /send/{txnId}`. They run before any other check, so nothing over
a limit is verified, fetched around or stored.

Spec: server-server-api.md "Transactions" (50 PDUs, 100 EDUs) and client-server-api.md
"Size limits" (65,536 bytes of canonical JSON per event; `sender`, `room_id`, `state_key`,
`type` and `event_id` at most 255 bytes); rooms/v*.md (`depth`, like every integer, within
canonical JSON's range). The range of the other integers is the room version's rule
(`check_canonical_json`, v6+), which `check_pdu` applies next: older rooms hold larger
ones and their hashes must still match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pydantic

from homeserver.event_hashing import CANONICALJSON_MAX_INT, CANONICALJSON_MIN_INT, canonical_json

MAX_PDU_SIZE = 65536
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10
MAX_ID_BYTES = 255
MAX_PDUS_PER_TRANSACTION = 50
MAX_EDUS_PER_TRANSACTION = 100

_MODEL_CONFIG = pydantic.ConfigDict(strict=True, extra="allow", frozen=True)


def _at_most_255_bytes(value: str) -> str:
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise ValueError(f"longer than {MAX_ID_BYTES} bytes")
    return value


ShortString = Annotated[str, pydantic.AfterValidator(_at_most_255_bytes)]
CanonicalInt = Annotated[int, pydantic.Field(ge=CANONICALJSON_MIN_INT,
                                             le=CANONICALJSON_MAX_INT)]


class PduEnvelope(pydantic.BaseModel):
    """The fields of a PDU with a limit; the rest is the room version's format."""

    model_config = _MODEL_CONFIG

    #: absent from v12 create events, whose ID names the room
    room_id: ShortString | None = None
    sender: ShortString
    type: ShortString
    state_key: ShortString | None = None
    #: v1/v2 rooms only; later ones derive it from the hash
    event_id: ShortString | None = None
    depth: Annotated[int, pydantic.Field(ge=0, le=CANONICALJSON_MAX_INT)]
    origin_server_ts: CanonicalInt
    prev_events: Annotated[list[Any], pydantic.Field(max_length=MAX_PREV_EVENTS)]
    auth_events: Annotated[list[Any], pydantic.Field(max_length=MAX_AUTH_EVENTS)]


class TransactionBody(pydantic.BaseModel):
    """`PUT /_matrix/federation/v1/send/{txnId}`. Entries are checked one by one later,
    so one malformed PDU or EDU does not cost the others; `pdus` may be missing, as
    Synapse allows."""

    model_config = _MODEL_CONFIG

    origin: str | None = None
    origin_server_ts: CanonicalInt | None = None
    pdus: Annotated[list[Any], pydantic.Field(max_length=MAX_PDUS_PER_TRANSACTION)] = []
    edus: Annotated[list[Any], pydantic.Field(max_length=MAX_EDUS_PER_TRANSACTION)] = []


class Edu(pydantic.BaseModel):
    """One entry of a transaction's `edus`."""

    model_config = _MODEL_CONFIG

    edu_type: str
    content: dict[str, Any]


def check_pdu_limits(pdu: Any, error: Callable[[str], Exception]) -> None:
    """Refuse a PDU over any limit of the envelope or over 64 KiB of canonical JSON.

    Args:
        pdu: the PDU as received.
        error: builds the exception to raise from a reason (`InvalidPdu` for callers that
            treat it like any malformed PDU).
    """
    if not isinstance(pdu, dict):
        raise error("PDU is not an object")
    try:
        PduEnvelope.model_validate(pdu)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "PDU"
        raise error(f"PDU over a limit or malformed: {where}: {first['msg']}") from None
    size = len(canonical_json(pdu))
    if size > MAX_PDU_SIZE:
        raise error(f"PDU is {size} bytes, more than {MAX_PDU_SIZE}")
