"""`PUT /_matrix/federation/v1/send/{txnId}`: transactions of PDUs and EDUs from other
servers. Idempotent per origin and transaction ID; one result per PDU."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from federation.event_handler import InvalidPdu
from federation.transport.server import FederationServlet, federation_patterns
from homeserver.errors import Codes, MatrixError
from homeserver.event_hashing import compute_event_id
from homeserver.room_versions import EventFormat
from rest.http import HttpRequest, Router, parse_json_object
from storage.caches import LruCache

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100


class FederationSendServlet(FederationServlet):
    PATTERNS = federation_patterns("/send/(?P<txn_id>[^/]+)/?")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._hs = hs
        self._events = hs.get_datastores().events
        # (origin, txn ID) -> the answer: a replayed transaction gets it again
        self._done: LruCache[tuple[str, str], dict[str, Any]] = LruCache(10_000)
        self._edu_handlers: dict[str, Any] = {}

    def register_edu_handler(self, edu_type: str, handler: Any) -> None:
        """`handler(origin, content)` for EDUs of this type (typing, receipts, ...)."""
        self._edu_handlers[edu_type] = handler

    async def on_PUT_authed(self, request: HttpRequest, origin: str,
                            txn_id: str) -> tuple[int, Any]:
        done = self._done.get((origin, txn_id))
        if done is not None:
            return 200, done
        body = parse_json_object(request)
        pdus = body.get("pdus", [])
        edus = body.get("edus", [])
        if not isinstance(pdus, list) or not isinstance(edus, list):
            raise MatrixError(400, Codes.BAD_JSON, "'pdus' and 'edus' must be lists")
        if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
            raise MatrixError(400, Codes.BAD_JSON,
                              f"At most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs per transaction")
        results: dict[str, Any] = {}
        handler = self._hs.get_federation_event_handler()
        for pdu in pdus:
            event_id, result = await self._one_pdu(handler, origin, pdu)
            if event_id is not None:
                results[event_id] = result
        for edu in edus:
            await self._one_edu(origin, edu)
        answer = {"pdus": results}
        self._done.set((origin, txn_id), answer)
        return 200, answer

    async def _one_pdu(self, handler: Any, origin: str, pdu: Any
                       ) -> tuple[str | None, dict[str, Any]]:
        if not isinstance(pdu, dict) or not isinstance(pdu.get("room_id"), str):
            return None, {}
        room_version = await self._events.get_room_version(pdu["room_id"])
        if room_version is None:
            logger.info("PDU from %s for unknown room %s dropped", origin, pdu["room_id"])
            return pdu.get("event_id") if isinstance(pdu.get("event_id"), str) else None, \
                {"error": "Unknown room"}
        try:
            event = await handler.check_pdu(pdu, room_version)
        except InvalidPdu as e:
            logger.info("PDU from %s refused: %s", origin, e)
            return _event_id_of(pdu, room_version), {"error": str(e)[:500]}
        try:
            await handler.on_receive_pdu(origin, event)
        except InvalidPdu as e:
            logger.info("PDU %s from %s refused: %s", event.event_id, origin, e)
            return event.event_id, {"error": str(e)[:500]}
        return event.event_id, {}

    async def _one_edu(self, origin: str, edu: Any) -> None:
        if not isinstance(edu, dict) or not isinstance(edu.get("edu_type"), str):
            return
        handler = self._edu_handlers.get(edu["edu_type"])
        if handler is None:
            return
        try:
            await handler(origin, edu.get("content"))
        except Exception:  # noqa: BLE001 - one bad EDU must not fail the transaction
            logger.exception("EDU %s from %s failed: %s", edu["edu_type"], origin,
                             json.dumps(edu)[:200])


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
