"""PUT /sendToDevice/{eventType}/{txnId}."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import HttpRequest, RequestBody, RestServlet, Router, client_patterns, parse_body

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class SendToDeviceBody(RequestBody):
    #: user ID -> device ID (or "*") -> message content
    messages: dict[str, dict[str, dict[str, Any]]]


class SendToDeviceServlet(RestServlet):
    PATTERNS = client_patterns("/sendToDevice/(?P<event_type>[^/]*)/(?P<txn_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._to_device = hs.get_to_device_handler()

    # PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}
    async def on_PUT(self, request: HttpRequest, event_type: str,
                     txn_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, SendToDeviceBody)
        await self._to_device.send_to_device(requester.user_id, requester.device_id,
                                             event_type, txn_id, body.messages)
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    SendToDeviceServlet(hs).register(router)
