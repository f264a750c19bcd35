"""Membership endpoints: invite, join, leave, forget, kick, ban, unban, knock, and the
member and room lists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_body,
    parse_string,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

ROOM = "(?P<room_id>[^/]*)"
MEMBERSHIPS = ("join", "invite", "leave", "ban", "knock")


class ReasonBody(RequestBody):
    reason: str | None = None


class TargetBody(RequestBody):
    user_id: str
    reason: str | None = None


class _MembershipServlet(RestServlet):
    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._members = hs.get_room_member_handler()


class InviteServlet(_MembershipServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/invite")

    # POST /_matrix/client/v3/rooms/{roomId}/invite
    async def on_POST(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, TargetBody)
        await self._members.invite(requester.user_id, room_id, body.user_id,
                                   reason=body.reason)
        return 200, {}


class JoinRoomServlet(_MembershipServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/join") + client_patterns(
        "/join/(?P<room_id>[^/]*)")

    # POST /_matrix/client/v3/rooms/{roomId}/join and /join/{roomIdOrAlias}
    async def on_POST(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, ReasonBody, allow_empty_body=True)
        # Servers to join a remote room through: `via` (and the older `server_name`).
        servers = [*request.query.get("via", []), *request.query.get("server_name", [])]
        resolved, servers = await self._members.resolve_room_for_join(room_id, servers)
        await self._members.join(requester.user_id, resolved, body.reason, servers)
        return 200, {"room_id": resolved}


class KnockServlet(_MembershipServlet):
    PATTERNS = client_patterns("/knock/(?P<room_id>[^/]*)")

    # POST /_matrix/client/v3/knock/{roomIdOrAlias}
    async def on_POST(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, ReasonBody, allow_empty_body=True)
        # Servers to knock through on a remote room: `via` (and the older `server_name`).
        servers = [*request.query.get("via", []), *request.query.get("server_name", [])]
        resolved, servers = await self._members.resolve_room_for_join(room_id, servers)
        await self._members.knock(requester.user_id, resolved, body.reason, servers)
        return 200, {"room_id": resolved}


class LeaveServlet(_MembershipServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/leave")

    # POST /_matrix/client/v3/rooms/{roomId}/leave
    async def on_POST(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, ReasonBody, allow_empty_body=True)
        await self._members.leave(requester.user_id, room_id, body.reason)
        return 200, {}


class ForgetServlet(_MembershipServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/forget")

    # POST /_matrix/client/v3/rooms/{roomId}/forget
    async def on_POST(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        await self._members.forget(requester.user_id, room_id)
        return 200, {}


class TargetedMembershipServlet(_MembershipServlet):
    """kick, ban, unban: one servlet, the action from the path."""

    PATTERNS = client_patterns(f"/rooms/{ROOM}/(?P<action>kick|ban|unban)")

    # POST /_matrix/client/v3/rooms/{roomId}/kick|ban|unban
    async def on_POST(self, request: HttpRequest, room_id: str,
                      action: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, TargetBody)
        handler = {"kick": self._members.kick, "ban": self._members.ban,
                   "unban": self._members.unban}[action]
        await handler(requester.user_id, room_id, body.user_id, body.reason)
        return 200, {}


class JoinedRoomsServlet(RestServlet):
    PATTERNS = client_patterns("/joined_rooms")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._reads = hs.get_room_members_read_handler()

    # GET /_matrix/client/v3/joined_rooms
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        return 200, {"joined_rooms": await self._reads.joined_rooms(requester.user_id)}


class MembersServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/members")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._reads = hs.get_room_members_read_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/members
    async def on_GET(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        membership = parse_string(request, "membership", allowed_values=MEMBERSHIPS)
        not_membership = parse_string(request, "not_membership", allowed_values=MEMBERSHIPS)
        # A /sync or pagination token, or an event ID: the handler tells them apart.
        at = parse_string(request, "at")
        chunk = await self._reads.members(requester.user_id, room_id, membership,
                                          not_membership, at)
        return 200, {"chunk": chunk}


class JoinedMembersServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/joined_members")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._reads = hs.get_room_members_read_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/joined_members
    async def on_GET(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        return 200, {"joined": await self._reads.joined_members(requester.user_id, room_id)}


def register_servlets(hs: HomeServer, router: Router) -> None:
    for servlet in (InviteServlet, JoinRoomServlet, KnockServlet, LeaveServlet,
                    ForgetServlet, TargetedMembershipServlet):
        servlet(hs).register(router)
    JoinedRoomsServlet(hs).register(router)
    MembersServlet(hs).register(router)
    JoinedMembersServlet(hs).register(router)
