"""`PUT /_matrix/federation/v1/send/{txnId}`: transactions of PDUs and EDUs from other
servers. Idempotent per origin and transaction ID; one result per PDU."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import pydantic
from twisted.internet import defer
from twisted.python.failure import Failure

from federation.event_handler import InvalidPdu
from federation.pdu_limits import Edu, TransactionBody
from federation.transport.server import FederationServlet, federation_patterns
from homeserver.errors import LimitExceededError
from homeserver.event_hashing import compute_event_id
from homeserver.room_versions import EventFormat
from rest.http import HttpRequest, Router, parse_json_object, validate_model
from storage.caches import LruCache

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: what a second transaction from a busy origin is told to wait
BUSY_RETRY_AFTER_MS = 1000

Answer = dict[str, Any]


class FederationSendServlet(FederationServlet):
    PATTERNS = federation_patterns("/send/(?P<txn_id>[^/]+)/?")
    # Left out of rc_federation, as in Synapse: one transaction per origin at a time
    # (below) bounds it already, and a sender has only one transaction in flight to us.
    RATELIMIT = False

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._events = hs.get_datastores().events
        self._handler = hs.get_federation_event_handler()
        # The answers below live in this process only, like Synapse's response cache. A
        # transaction retried to another process is processed again there, which is safe:
        # stored events are recognised by ID and to-device messages by message_id.
        # (origin, txn ID) -> the answer: a replayed transaction gets it again
        self._done: LruCache[tuple[str, str], Answer] = LruCache(10_000)
        # (origin, txn ID) of a transaction being processed -> the repeats waiting for it
        self._waiting: dict[tuple[str, str], list[defer.Deferred[Answer]]] = {}
        # origin -> the ID of its transaction being processed
        self._active: dict[str, str] = {}
        self._edu_handlers: dict[str, Any] = {}

    def register_edu_handler(self, edu_type: str, handler: Any) -> None:
        """`handler(origin, content)` for EDUs of this type (typing, receipts, ...)."""
        self._edu_handlers[edu_type] = handler

    # PUT /_matrix/federation/v1/send/{txnId}
    async def on_PUT_authed(self, request: HttpRequest, origin: str,
                            txn_id: str) -> tuple[int, Any]:
        key = (origin, txn_id)
        done = self._done.get(key)
        if done is not None:
            return 200, done
        waiting = self._waiting.get(key)
        if waiting is not None:
            repeat: defer.Deferred[Answer] = defer.Deferred()
            waiting.append(repeat)
            return 200, await repeat
        body = validate_model(TransactionBody, parse_json_object(request))
        if origin in self._active:
            # One transaction per origin at a time (Synapse answers 429 as well); the
            # refusal is not remembered, so the sender's retry is processed.
            logger.info("Transaction %s from %s refused: %s still in progress", txn_id,
                        origin, self._active[origin])
            raise LimitExceededError(retry_after_ms=BUSY_RETRY_AFTER_MS)
        # No await between the look-ups above and these: nothing else can slip in.
        self._active[origin] = txn_id
        self._waiting[key] = []
        try:
            answer = await self._process(origin, body)
        except Exception:
            failure = Failure()
            del self._active[origin]
            for repeat in self._waiting.pop(key):
                repeat.errback(failure)
            raise
        self._done.set(key, answer)
        del self._active[origin]
        for repeat in self._waiting.pop(key):
            repeat.callback(answer)
        return 200, answer

    async def _process(self, origin: str, body: TransactionBody) -> Answer:
        results: dict[str, Any] = {}
        for pdu in body.pdus:
            event_id, result = await self._one_pdu(origin, pdu)
            if event_id is not None:
                results[event_id] = result
        for edu in body.edus:
            await self._one_edu(origin, edu)
        return {"pdus": results}

    async def _one_pdu(self, origin: str, pdu: Any) -> tuple[str | None, dict[str, Any]]:
        if not isinstance(pdu, dict) or not isinstance(pdu.get("room_id"), str):
            return None, {}  # nothing to name it by in the answer
        room_version = await self._events.get_room_version(pdu["room_id"])
        if room_version is None:
            logger.info("PDU from %s for unknown room %s dropped", origin, pdu["room_id"])
            return pdu.get("event_id") if isinstance(pdu.get("event_id"), str) else None, \
                {"error": "Unknown room"}
        event_id = _event_id_of(pdu, room_version)
        try:
            event = await self._handler.check_pdu(pdu, room_version)
            event_id = event.event_id
            await self._handler.on_receive_pdu(origin, event)
        except InvalidPdu as e:
            logger.info("PDU %s from %s refused: %s", event_id, origin, e)
            return event_id, {"error": str(e)[:500]}
        except Exception:  # noqa: BLE001 - one PDU must not fail the others (Synapse too)
            logger.exception("PDU %s from %s failed", event_id, origin)
            return event_id, {"error": "Internal error while processing the PDU"}
        return event_id, {}

    async def _one_edu(self, origin: str, raw: Any) -> None:
        try:
            edu = Edu.model_validate(raw)
        except pydantic.ValidationError:
            logger.info("Malformed EDU from %s dropped: %s", origin, json.dumps(raw)[:200])
            return
        handler = self._edu_handlers.get(edu.edu_type)
        if handler is None:
            return
        try:
            await handler(origin, edu.content)
        except Exception:  # noqa: BLE001 - one bad EDU must not fail the transaction
            logger.exception("EDU %s from %s failed: %s", edu.edu_type, origin,
                             json.dumps(raw)[:200])


def _event_id_of(pdu: dict[str, Any], room_version: Any) -> str | None:
    """The PDU's event ID, even for one that failed its checks (None if underivable)."""
    if room_version.event_format == EventFormat.V1:
        event_id = pdu.get("event_id")
        return event_id if isinstance(event_id, str) else None
    try:
        return compute_event_id(pdu, room_version)
    except Exception:  # noqa: BLE001 - unhashable garbage
        return None


def register_servlets(hs: HomeServer, router: Router) -> None:
    servlet = FederationSendServlet(hs)
    servlet.register_edu_handler("m.typing", hs.get_typing_handler().on_remote_typing)
    servlet.register_edu_handler("m.receipt", hs.get_receipts_handler().on_remote_receipts)
    servlet.register_edu_handler("m.direct_to_device",
                                 hs.get_to_device_handler().on_remote_to_device)
    servlet.register_edu_handler("m.presence", hs.get_presence_handler().on_remote_presence)
    servlet.register_edu_handler("m.signing_key_update",
                                 hs.get_device_list_handler().on_remote_signing_key_update)
    servlet.register_edu_handler("m.device_list_update",
                                 hs.get_device_list_handler().on_remote_device_list_update)
    servlet.register(router)
