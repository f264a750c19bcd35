"""Federation membership endpoints: make_join/send_join, make_leave/send_leave,
make_knock/send_knock, invite.

All authenticated with X-Matrix; the checks live in `FederationMembershipHandler`. The v1
send_join/send_leave answers are the old `[200, body]` pairs, kept for older servers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport.server import FEDERATION_V2, FederationServlet, federation_patterns
from homeserver.identifiers import EventID, RoomID
from rest.http import HttpRequest, Router, parse_json_object, parse_json_value

if TYPE_CHECKING:
    from homeserver.server import HomeServer

ROOM = "(?P<room_id>[^/]+)"
USER = "(?P<user_id>[^/]+)"
EVENT = "(?P<event_id>[^/]+)"


def _room_id(value: str) -> str:
    RoomID.parse(value)  # 400 M_INVALID_PARAM
    return value


def _event_id(value: str) -> str:
    EventID.parse(value)  # 400 M_INVALID_PARAM
    return value


class _MembershipServlet(FederationServlet):
    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._handler = hs.get_federation_membership_handler()


class MakeJoinServlet(_MembershipServlet):
    PATTERNS = federation_patterns(f"/make_join/{ROOM}/{USER}")

    # GET /_matrix/federation/v1/make_join/{roomId}/{userId}?ver=...
    async def on_GET_authed(self, request: HttpRequest, origin: str, room_id: str,
                            user_id: str) -> tuple[int, Any]:
        # Without `ver`, the asking server only supports room version 1.
        versions = request.query.get("ver") or ["1"]
        return 200, await self._handler.make_membership_event(
            origin, _room_id(room_id), user_id, "join", versions)


class MakeLeaveServlet(_MembershipServlet):
    PATTERNS = federation_patterns(f"/make_leave/{ROOM}/{USER}")

    # GET /_matrix/federation/v1/make_leave/{roomId}/{userId}
    async def on_GET_authed(self, request: HttpRequest, origin: str, room_id: str,
                            user_id: str) -> tuple[int, Any]:
        return 200, await self._handler.make_membership_event(
            origin, _room_id(room_id), user_id, "leave")


class MakeKnockServlet(_MembershipServlet):
    PATTERNS = federation_patterns(f"/make_knock/{ROOM}/{USER}")

    # GET /_matrix/federation/v1/make_knock/{roomId}/{userId}?ver=...
    async def on_GET_authed(self, request: HttpRequest, origin: str, room_id: str,
                            user_id: str) -> tuple[int, Any]:
        # `ver` is required; without it no room version with knocks can match.
        versions = request.query.get("ver") or []
        return 200, await self._handler.make_membership_event(
            origin, _room_id(room_id), user_id, "knock", versions)


class _SendMembershipServlet(_MembershipServlet):
    MEMBERSHIP = ""
    LEGACY = False

    async def on_PUT_authed(self, request: HttpRequest, origin: str, room_id: str,
                            event_id: str) -> tuple[int, Any]:
        pdu = parse_json_object(request)
        answer = await self._handler.on_send_membership_event(
            origin, _room_id(room_id), _event_id(event_id), pdu, self.MEMBERSHIP)
        return 200, [200, answer] if self.LEGACY else answer


class SendJoinServlet(_SendMembershipServlet):
    # PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}
    PATTERNS = federation_patterns(f"/send_join/{ROOM}/{EVENT}", FEDERATION_V2)
    MEMBERSHIP = "join"


class SendJoinV1Servlet(SendJoinServlet):
    # PUT /_matrix/federation/v1/send_join/{roomId}/{eventId} (deprecated)
    PATTERNS = federation_patterns(f"/send_join/{ROOM}/{EVENT}")
    LEGACY = True


class SendLeaveServlet(_SendMembershipServlet):
    # PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}
    PATTERNS = federation_patterns(f"/send_leave/{ROOM}/{EVENT}", FEDERATION_V2)
    MEMBERSHIP = "leave"


class SendLeaveV1Servlet(SendLeaveServlet):
    # PUT /_matrix/federation/v1/send_leave/{roomId}/{eventId} (deprecated)
    PATTERNS = federation_patterns(f"/send_leave/{ROOM}/{EVENT}")
    LEGACY = True


class SendKnockServlet(_SendMembershipServlet):
    # PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}
    PATTERNS = federation_patterns(f"/send_knock/{ROOM}/{EVENT}")
    MEMBERSHIP = "knock"


class InviteServlet(_MembershipServlet):
    PATTERNS = federation_patterns(f"/invite/{ROOM}/{EVENT}", FEDERATION_V2)

    # PUT /_matrix/federation/v2/invite/{roomId}/{eventId}
    async def on_PUT_authed(self, request: HttpRequest, origin: str, room_id: str,
                            event_id: str) -> tuple[int, Any]:
        body = parse_json_value(request)
        return 200, await self._handler.on_invite(
            origin, _room_id(room_id), _event_id(event_id), body)


def register_servlets(hs: HomeServer, router: Router) -> None:
    for servlet in (MakeJoinServlet, MakeLeaveServlet, SendJoinServlet, SendJoinV1Servlet,
                    SendLeaveServlet, SendLeaveV1Servlet, MakeKnockServlet, SendKnockServlet,
                    InviteServlet):
        servlet(hs).register(router)
