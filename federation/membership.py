"""Membership across servers (server-server API "Joining rooms", "Leaving rooms",
"Inviting to a room").

Server side — other servers' users and OUR rooms: `make_join`/`make_leave` answer an
event template built like a local event (prev and auth events from our extremities and
state); `send_join`/`send_leave` check the signed event, add it to the room and, for a
join, answer the state before it with its auth chain; `invite` countersigns an invite of
one of our users and keeps it as an out-of-room event so /sync shows it.

Client side — OUR users and rooms on other servers: joining through a resident server
(make_join → sign → send_join → store the room's state), rejecting a remote invite
(make_leave → send_leave), and having an invite of a remote user countersigned by its
server before we persist it.
"""

from __future__ import annotations

import logging
import secrets
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from federation.client import FederationRequestError
from federation.event_handler import InvalidPdu
from federation.keyring import KeyRingError
from federation.restricted import AUTHORISING_USER, RestrictedJoins
from federation.serving import federation_pdu
from handlers.event_creation import EventSpec
from handlers.event_serialize import EventRedactions
from handlers.sync_rooms import STRIPPED_STATE_TYPES
from homeserver.errors import Codes, MatrixError
from homeserver.event_auth import AuthError, check_auth_rules
from homeserver.event_hashing import (
    add_content_hash,
    check_canonical_json,
    check_content_hash,
    compute_event_id,
    sign_event,
)
from homeserver.events import Event
from homeserver.identifiers import UserID
from homeserver.redaction import prune_event_dict
from homeserver.room_versions import KNOWN_ROOM_VERSIONS, EventFormat, RoomVersion
from storage.stores.events import PersistContext

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]

#: membership -> (template endpoint, send endpoint)
_ENDPOINTS = {"join": ("make_join", "send_join"), "leave": ("make_leave", "send_leave"),
              "knock": ("make_knock", "send_knock")}


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _domain(identifier: str) -> str | None:
    """The server part of a user ID, room ID or alias (v12 room IDs have none)."""
    return identifier.split(":", 1)[1] if ":" in identifier else None


def _require_knocks(room_version: RoomVersion, membership: str) -> None:
    """Knocks exist from room version 7: 400 M_INCOMPATIBLE_ROOM_VERSION before."""
    if membership == "knock" and not room_version.knock_join_rule:
        raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION,
                          f"Room version {room_version.identifier} does not support knocking",
                          room_version=room_version.identifier)


@attrs.frozen(slots=True)
class MembershipResult:
    """A membership event we sent through another server, as persisted here."""

    event: Event
    stream_ordering: int


class FederationMembershipHandler:
    """Built once by the container (`hs.get_federation_membership_handler()`)."""

    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._server_name = hs.hostname
        self._clock = hs.get_clock()
        stores = hs.get_datastores()
        self._events = stores.events
        self._dag = stores.event_federation
        self._rooms = stores.rooms
        self._members = stores.room_members
        self._creation = hs.get_event_creation_handler()
        self._state = hs.get_state_handler()
        self._notifier = hs.get_notifier()
        self._current = stores.state
        self._restricted = RestrictedJoins(hs)
        self._redactions = EventRedactions(self._events)
        self._account_data = hs.get_account_data_handler()

    # ---------------------------------------------------------------------------------
    # server side: other servers' users in our rooms

    async def _require_resident(self, origin: str, room_id: str) -> RoomVersion:
        """The version of a room we are in (a local user is joined) whose server ACL
        lets `origin` in; 404, 403 otherwise."""
        room_version = await self._events.get_room_version(room_id)
        if room_version is None or not await self.is_host_in_room(room_id):
            raise MatrixError(404, Codes.NOT_FOUND, f"Unknown room {room_id}")
        await self._hs.get_server_visibility().check_server_acl(origin, room_id)
        return room_version

    async def restricted_join_authoriser(self, room_id: str, user_id: str) -> str | None:
        """Our user who vouches for `user_id`'s join to a restricted room we are in, or
        None when the join needs nobody (see `RestrictedJoins.authorising_user`).

        Raises:
            MatrixError: 403 / 400 when the user may not join without an invite.
        """
        room_version = await self._events.get_room_version(room_id)
        if room_version is None:
            return None
        return await self._restricted.authorising_user(
            room_version, await self._current.get_current_state_ids(room_id), user_id)

    async def is_host_in_room(self, room_id: str) -> bool:
        """Whether one of our users is joined to the room (so we hold its current state)."""
        return any(self._hs.is_mine_id(u) for u in await self._members.get_users_in_room(room_id))

    # GET /_matrix/federation/v1/make_join/{roomId}/{userId}, /make_leave/..., /make_knock/...
    async def make_membership_event(self, origin: str, room_id: str, user_id: str,
                                    membership: str,
                                    supported_versions: Sequence[str] | None = None
                                    ) -> dict[str, Any]:
        """`{room_version, event}`: an unsigned template of `user_id`'s membership event.

        Raises:
            MatrixError: 404 M_NOT_FOUND for a room we are not in; 400
                M_INCOMPATIBLE_ROOM_VERSION when the room's version is not in
                `supported_versions` (joins, knocks) or has no knocks (knocks); 403
                M_FORBIDDEN when the user is not on the asking server, the auth rules
                would refuse the event, or (restricted rooms) the user is in none of the
                allowed rooms; 400 M_UNABLE_TO_AUTHORISE_JOIN / M_UNABLE_TO_GRANT_JOIN
                when we cannot judge or vouch for a restricted join.
        """
        UserID.parse(user_id)
        room_version = await self._require_resident(origin, room_id)
        if supported_versions is not None \
                and room_version.identifier not in supported_versions:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION,
                              "Your homeserver does not support the features required to "
                              "interact with this room",
                              room_version=room_version.identifier)
        _require_knocks(room_version, membership)
        if _domain(user_id) != origin:
            raise MatrixError(403, Codes.FORBIDDEN,
                              f"{user_id} is not a user of the requesting server")
        content: dict[str, Any] = {"membership": membership}
        if membership == "join":
            via = await self.restricted_join_authoriser(room_id, user_id)
            if via is not None:
                content[AUTHORISING_USER] = via
        spec = EventSpec(room_id=room_id, type="m.room.member", sender=user_id,
                         content=content, state_key=user_id)
        pdu, auth_map = await self._creation.build_event_template(spec, room_version)
        # The requester writes its own event ID (v1, v2) and origin.
        pdu.pop("event_id", None)
        if "origin" in pdu:
            pdu["origin"] = origin
        probe_id = f"$template:{origin}"
        probe = Event.from_pdu(pdu, room_version, event_id=probe_id)
        try:
            check_auth_rules(probe, auth_map)
        except AuthError as e:
            raise MatrixError(403, Codes.FORBIDDEN, f"You are not allowed to {membership} "
                              f"this room: {e.msg}") from None
        return {"room_version": room_version.identifier, "event": pdu}

    async def _check_membership_pdu(self, origin: str, room_id: str, event_id: str,
                                    pdu: Any, membership: str,
                                    room_version: RoomVersion) -> Event:
        """Shape, origin, event ID and signature checks of a signed membership event.

        Knocks are refused with 400 M_INVALID_PARAM, as the spec of send_knock asks,
        where joins and leaves use M_BAD_JSON and 403 M_FORBIDDEN."""
        knock = membership == "knock"
        shape = Codes.INVALID_PARAM if knock else Codes.BAD_JSON
        refused = (400, Codes.INVALID_PARAM) if knock else (403, Codes.FORBIDDEN)
        if not isinstance(pdu, dict):
            raise MatrixError(400, shape, "The body must be a PDU")
        try:
            shaped = Event.from_pdu(pdu, room_version)
        except ValueError as e:
            raise MatrixError(400, shape, f"Malformed PDU: {e}") from None
        if shaped.event_id != event_id:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "The event ID in the path does not match the event")
        if shaped.room_id != room_id:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "The room ID in the path does not match the event")
        if shaped.type != "m.room.member" or shaped.membership != membership:
            raise MatrixError(400, shape, f"Not a {membership} event")
        if shaped.state_key != shaped.sender:
            raise MatrixError(400, shape,
                              f"A {membership} event's state_key must be its sender")
        if _domain(shaped.sender) != origin:
            raise MatrixError(*refused, f"The {membership} event's sender is not on {origin}")
        try:
            return await self._fed_events().check_pdu(pdu, room_version)
        except InvalidPdu as e:
            raise MatrixError(*refused, f"Invalid event: {e}") from None

    def _fed_events(self) -> Any:
        return self._hs.get_federation_event_handler()

    def _sign(self, event: Event) -> Event:
        """The event with our signature added (same event ID)."""
        try:
            signed = sign_event(dict(event.pdu_json), self._server_name,
                                self._hs.get_signing_key(), event.room_version)
        except ValueError as e:
            raise MatrixError(400, Codes.BAD_JSON, str(e)) from None
        return attrs.evolve(event, pdu_json=signed)

    # PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}, /v2/send_leave/...,
    # PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}
    async def on_send_membership_event(self, origin: str, room_id: str, event_id: str,
                                       pdu: Any, membership: str) -> dict[str, Any]:
        """Add another server's signed join, leave or knock to our room.

        A join answers `{event, state, auth_chain, origin, members_omitted}` (the state
        before the join and its auth chain); a knock `{knock_room_state}` (the room's
        stripped state as PDUs); a leave `{}`. A restricted join naming one of our users
        as its authoriser is checked again against the allowed rooms and signed by us.

        Raises:
            MatrixError: 404 for a room we are not in; 400 for a malformed event, the wrong
                type or membership, or IDs that do not match the path, for a knock on a
                room version without knocks (M_INCOMPATIBLE_ROOM_VERSION) and for a join
                authorised by another server's user; 403 when the sender is not on the
                origin, a signature is bad, the auth rules refuse, or a restricted join's
                user is in none of the allowed rooms (knocks: 400 M_INVALID_PARAM for
                the sender and signature checks).
        """
        room_version = await self._require_resident(origin, room_id)
        _require_knocks(room_version, membership)
        if membership == "join":
            pdu = await self._vouch_for_restricted_join(room_id, room_version, pdu)
        checked = await self._check_membership_pdu(origin, room_id, event_id, pdu,
                                                   membership, room_version)
        event = self._sign(checked)
        try:
            await self._fed_events().on_receive_pdu(origin, event)
        except InvalidPdu as e:
            raise MatrixError(403, Codes.FORBIDDEN, f"The {membership} was refused: {e}") \
                from None
        await self._forward_to_room(event, exclude=origin)
        if membership == "leave":
            return {}
        # Whether it passed: soft-failed or outlier events never enter the room.
        current = await self._current.get_current_state_ids(room_id)
        if current.get(event.state_pair()) != event.event_id:
            raise MatrixError(403, Codes.FORBIDDEN,
                              f"The {membership} was not accepted into the room")
        if membership == "knock":
            return {"knock_room_state": await self._stripped_state_pdus(current)}
        before = await self._state.state_before(room_version, list(event.prev_event_ids))
        state_ids = list(before.state.values())
        chain_ids = await self._dag.get_auth_chain_ids(room_id, [*state_ids, event.event_id])
        loaded = await self._redactions.get_events([*state_ids, *chain_ids])
        # Never an event of another room or a rejected one, whatever the tables say.
        servable = {e: ev for e, ev in loaded.items()
                    if ev.room_id == room_id and ev.rejected_reason is None}
        state = [federation_pdu(servable[e]) for e in state_ids if e in servable]
        chain = [federation_pdu(servable[e]) for e in sorted(chain_ids) if e in servable]
        return {"event": federation_pdu(event), "state": state, "auth_chain": chain,
                "origin": self._server_name, "members_omitted": False}

    async def _vouch_for_restricted_join(self, room_id: str, room_version: RoomVersion,
                                         pdu: Any) -> Any:
        """A join naming an authorising user: it must be ours and the user must still
        be in an allowed room; then our signature goes on first, so that the checks of
        the event's signatures (the authoriser's server's included) pass."""
        content = pdu.get("content") if isinstance(pdu, dict) else None
        if not isinstance(content, dict) or AUTHORISING_USER not in content:
            return pdu
        self._restricted.check_authoriser_is_ours(content)
        sender = pdu.get("sender")
        if isinstance(sender, str):
            await self._restricted.authorising_user(
                room_version, await self._current.get_current_state_ids(room_id), sender)
        try:
            return sign_event(pdu, self._server_name, self._hs.get_signing_key(),
                              room_version)
        except (ValueError, TypeError, KeyError) as e:
            raise MatrixError(400, Codes.BAD_JSON, f"Malformed PDU: {e}") from None

    async def _stripped_state_pdus(self, state: Mapping[StateKey, str]
                                   ) -> list[dict[str, Any]]:
        """The room's stripped state (create, join rules, name, …) as PDUs: what knocks
        (and invites) carry so the user can tell what room it is."""
        wanted = [v for (t, k), v in state.items() if t in STRIPPED_STATE_TYPES and k == ""]
        loaded = await self._redactions.get_events(wanted)
        return [federation_pdu(loaded[e]) for e in wanted if e in loaded]

    # PUT /_matrix/federation/v2/invite/{roomId}/{eventId}
    async def _forward_to_room(self, event: Event, exclude: str) -> None:
        """As the resident server, pass a membership event received by send_join /
        send_leave on to the room's other servers (they learn of it only from us)."""
        sender = self._hs.get_federation_sender()
        destinations = await sender.destinations_for_room(event.room_id)
        destinations.discard(exclude)
        if destinations:
            sender.send_pdu(event, destinations)

    async def on_invite(self, origin: str, room_id: str, event_id: str,
                        body: Any) -> dict[str, Any]:
        """Countersign an invite of one of our users and keep it for their /sync.

        Raises:
            MatrixError: 400 M_INCOMPATIBLE_ROOM_VERSION for a room version we do not
                support; 400 M_INVALID_PARAM (what the spec recommends) for a malformed
                body, an event that is not an invite of one of our users by a user of the
                origin, IDs that do not match the path, or a bad signature.
        """
        if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
            raise MatrixError(400, Codes.BAD_JSON, "Expected {room_version, event}")
        version_id = body.get("room_version")
        if not isinstance(version_id, str):
            raise MatrixError(400, Codes.MISSING_PARAM, "room_version missing")
        room_version = KNOWN_ROOM_VERSIONS.get(version_id)
        if room_version is None:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION,
                              f"Room version {version_id} is not supported",
                              room_version=version_id)
        pdu: dict[str, Any] = body["event"]
        try:
            shaped = Event.from_pdu(pdu, room_version)
        except ValueError as e:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Malformed invite: {e}") from None
        if shaped.event_id != event_id or shaped.room_id != room_id:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "The event or room ID in the path does not match the event")
        if shaped.type != "m.room.member" or shaped.membership != "invite":
            raise MatrixError(400, Codes.INVALID_PARAM, "Not an invite event")
        if shaped.state_key is None or not self._hs.is_mine_id(shaped.state_key):
            raise MatrixError(400, Codes.INVALID_PARAM, "The invitee is not a user here")
        if _domain(shaped.sender) != origin:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"The inviter is not a user of {origin}")
        await self._account_data.check_invites_allowed(shaped.state_key)
        stripped = body.get("invite_room_state")
        if stripped is None:
            unsigned = pdu.get("unsigned")
            stripped = unsigned.get("invite_room_state") if isinstance(unsigned, dict) else None
        stripped = [e for e in stripped if isinstance(e, dict)] \
            if isinstance(stripped, list) else []
        if room_version.room_id_from_create_event and not any(
                e.get("type") == "m.room.create" for e in stripped):
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "invite_room_state must contain the m.room.create event")
        try:
            checked = await self._fed_events().check_pdu(pdu, room_version)
        except InvalidPdu as e:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid invite: {e}") from None
        signed = self._sign(checked)
        answer = federation_pdu(signed)
        await self._store_invite(origin, signed, room_version, stripped)
        return {"event": answer}

    async def _store_invite(self, origin: str, event: Event, room_version: RoomVersion,
                            stripped: list[dict[str, Any]]) -> None:
        if await self.is_host_in_room(event.room_id):
            # We are in the room: the invite joins the room's graph like any event (the
            # copy that arrives later in a transaction is then already known).
            try:
                await self._fed_events().on_receive_pdu(origin, event)
            except InvalidPdu as e:
                raise MatrixError(403, Codes.FORBIDDEN, f"Invite refused: {e}") from None
            return
        known = await self._events.get_stream_ordering(event.event_id)
        if known is not None:
            return
        await self._store_outlier_membership(event, room_version, "invite_room_state",
                                             stripped)

    # ---------------------------------------------------------------------------------
    # client side: our users and rooms on other servers

    def candidate_servers(self, room_id: str, *hints: Iterable[str]) -> list[str]:
        """Servers to try, in order: the hints (alias answer, `via`, the inviter's
        server), then the room ID's server (v1–v11); never ourselves, no repeats."""
        ordered = [s for group in hints for s in group]
        domain = _domain(room_id)
        if domain is not None:
            ordered.append(domain)
        return [s for s in dict.fromkeys(ordered) if s and s != self._server_name]

    async def query_room_alias(self, alias: str) -> tuple[str, list[str]]:
        """`(room_id, servers)` of a remote alias (`GET /query/directory` on its server).

        Raises:
            MatrixError: 404 M_NOT_FOUND for an alias its server does not know or cannot
                be reached about.
        """
        server = _domain(alias)
        assert server is not None
        try:
            answer = await self._hs.get_federation_client().get_json(
                server, "/_matrix/federation/v1/query/directory", {"room_alias": alias})
        except FederationRequestError as e:
            logger.info("Alias lookup of %s failed: %s", alias, e)
            raise MatrixError(404, Codes.NOT_FOUND, "Room alias not found") from None
        room_id = answer.get("room_id") if isinstance(answer, dict) else None
        if not isinstance(room_id, str) or not room_id.startswith("!"):
            raise MatrixError(404, Codes.NOT_FOUND, "Room alias not found")
        servers = answer.get("servers")
        return room_id, [s for s in servers if isinstance(s, str)] \
            if isinstance(servers, list) else []

    async def _make_and_sign(self, server: str, room_id: str, user_id: str,
                             membership: str, content: Mapping[str, Any]
                             ) -> tuple[RoomVersion, Event]:
        """Ask `server` for a template, fill it in and sign it."""
        make, _ = _ENDPOINTS[membership]
        path = f"/_matrix/federation/v1/{make}/{_quote(room_id)}/{_quote(user_id)}"
        query = {"ver": list(KNOWN_ROOM_VERSIONS)} if membership != "leave" else None
        answer = await self._hs.get_federation_client().get_json(server, path, query)
        if not isinstance(answer, dict) or not isinstance(answer.get("event"), dict):
            raise FederationRequestError(server, f"{make}: malformed answer")
        version_id = answer.get("room_version", "1")
        room_version = KNOWN_ROOM_VERSIONS.get(version_id) \
            if isinstance(version_id, str) else None
        if room_version is None:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION,
                              f"Room version {version_id!r} is not supported",
                              room_version=str(version_id))
        _require_knocks(room_version, membership)
        template = answer["event"]
        pdu = {k: v for k, v in template.items()
               if k not in ("event_id", "hashes", "signatures", "unsigned")}
        pdu["content"] = dict(content)
        # A restricted join: the resident names who vouches for us; keep it.
        template_content = template.get("content")
        if membership == "join" and isinstance(template_content, dict) \
                and isinstance(template_content.get(AUTHORISING_USER), str):
            pdu["content"][AUTHORISING_USER] = template_content[AUTHORISING_USER]
        pdu["origin_server_ts"] = self._clock.time_msec()
        if room_version.updated_redaction_rules:
            pdu.pop("origin", None)
        else:
            pdu["origin"] = self._server_name
        if room_version.event_format == EventFormat.V1:
            pdu["event_id"] = f"${secrets.token_urlsafe(18)}:{self._server_name}"
        if (pdu.get("type") != "m.room.member" or pdu.get("state_key") != user_id
                or pdu.get("sender") != user_id or pdu.get("room_id") != room_id
                or not isinstance(template_content, dict)
                or template_content.get("membership") != membership):
            raise FederationRequestError(server, f"{make}: the template is not our {membership}")
        pdu = sign_event(add_content_hash(pdu), self._server_name,
                         self._hs.get_signing_key(), room_version)
        try:
            check_canonical_json(pdu, room_version)
            event = Event.from_pdu(pdu, room_version)
        except ValueError as e:
            raise FederationRequestError(server, f"{make}: bad template: {e}") from None
        return room_version, event

    async def _check_pdus(self, pdus: Any, room_id: str,
                          room_version: RoomVersion) -> list[Event]:
        """The valid PDUs of a send_join answer (others are dropped and logged)."""
        out: list[Event] = []
        for pdu in pdus if isinstance(pdus, list) else []:
            try:
                event = await self._fed_events().check_pdu(pdu, room_version)
            except InvalidPdu as e:
                logger.warning("Dropping a PDU of the send_join answer: %s", e)
                continue
            if event.room_id == room_id:
                out.append(event)
        return out

    async def join_remote_room(self, user_id: str, room_id: str, servers: Sequence[str],
                               content: Mapping[str, Any]) -> MembershipResult:
        """Join a room we are not in through the first of `servers` that lets us.

        Raises:
            MatrixError: 404 M_NOT_FOUND without servers to try; the last resident's
                4xx error when every one refused; 502 when none could be reached or
                none answered usably.
        """
        if not servers:
            raise MatrixError(404, Codes.NOT_FOUND, "No known servers for this room")
        last: Exception | None = None
        for server in servers:
            try:
                room_version, event = await self._make_and_sign(
                    server, room_id, user_id, "join", content)
                answer = await self._hs.get_federation_client().put_json(
                    server, f"/_matrix/federation/v2/send_join/{_quote(room_id)}/"
                    f"{_quote(event.event_id)}", federation_pdu(event))
                if not isinstance(answer, dict):
                    raise FederationRequestError(server, "send_join: malformed answer")
                event = await self._countersigned(answer.get("event"), event, server)
                state = await self._check_pdus(answer.get("state"), room_id, room_version)
                # persist_remote_join stores state and chain once each (they overlap); only
                # our join, persisted last with its state, must not be among them.
                chain = [e for e in await self._check_pdus(answer.get("auth_chain"), room_id,
                                                           room_version)
                         if e.event_id != event.event_id]
                ordering = await self._fed_events().persist_remote_join(
                    room_version, event, state, chain)
                return MembershipResult(event, ordering)
            except (FederationRequestError, InvalidPdu) as e:
                logger.info("Joining %s through %s failed: %s", room_id, server, e)
                last = e
        raise _client_error(last, "join")

    async def _countersigned(self, signed: Any, ours: Event, server: str) -> Event:
        """Our event with the resident's signatures from its answer, when they verify."""
        if not isinstance(signed, dict):
            return ours
        try:
            if compute_event_id(signed, ours.room_version) != ours.event_id:
                return ours
            await self._hs.get_keyring().verify_json_for_server(
                server, prune_event_dict(signed, ours.room_version), 0)
        except (ValueError, KeyRingError) as e:
            logger.info("Ignoring the countersigned event from %s: %s", server, e)
            return ours
        signatures = {**dict(ours.pdu_json.get("signatures", {})),
                      server: signed["signatures"][server]}
        return attrs.evolve(ours, pdu_json={**ours.pdu_json, "signatures": signatures})

    async def knock_remote_room(self, user_id: str, room_id: str, servers: Sequence[str],
                                content: Mapping[str, Any]) -> MembershipResult:
        """Knock on a room we are not in through the first of `servers` that takes it
        (make_knock → sign → send_knock); the knock is kept as an out-of-room event with
        the room's stripped state, so /sync shows it under `rooms.knock`.

        Raises:
            MatrixError: 404 M_NOT_FOUND without servers to try; 400
                M_INCOMPATIBLE_ROOM_VERSION for a room version without knocks; the
                last resident's 4xx error when every one refused; 502 when none could
                be reached or none answered usably.
        """
        if not servers:
            raise MatrixError(404, Codes.NOT_FOUND, "No known servers for this room")
        last: Exception | None = None
        for server in servers:
            try:
                room_version, event = await self._make_and_sign(
                    server, room_id, user_id, "knock", content)
                answer = await self._hs.get_federation_client().put_json(
                    server, f"/_matrix/federation/v1/send_knock/{_quote(room_id)}/"
                    f"{_quote(event.event_id)}", federation_pdu(event))
                if not isinstance(answer, dict) \
                        or not isinstance(answer.get("knock_room_state"), list):
                    raise FederationRequestError(server, "send_knock: malformed answer")
            except FederationRequestError as e:
                logger.info("Knocking on %s through %s failed: %s", room_id, server, e)
                last = e
                continue
            # Badly signed or malformed entries are dropped, as the spec asks.
            stripped = await self._check_pdus(
                [e for e in answer["knock_room_state"]
                 if isinstance(e, dict) and check_content_hash(e)], room_id, room_version)
            ordering = await self._store_outlier_membership(
                event, room_version, "knock_room_state",
                [federation_pdu(e) for e in stripped])
            return MembershipResult(event, ordering)
        raise _client_error(last, "knock")

    async def _store_outlier_membership(self, event: Event, room_version: RoomVersion,
                                        state_key: str, stripped: list[dict[str, Any]]
                                        ) -> int:
        """Keep our user's membership event of a room we are not in (with the room's
        stripped state in `unsigned[state_key]`) and show it in their /sync."""
        user_id, membership = event.state_key, event.membership
        assert user_id is not None and membership is not None
        create = next((e for e in stripped if e.get("type") == "m.room.create"), None)
        creator = create["sender"] if create is not None \
            and isinstance(create.get("sender"), str) else event.sender
        await self._rooms.store_remote_room(event.room_id, room_version.identifier, creator,
                                            event.origin_server_ts)
        unsigned = {**dict(event.pdu_json.get("unsigned") or {}), state_key: stripped}
        event = attrs.evolve(event, pdu_json={**event.pdu_json, "unsigned": unsigned})
        ordering = await self._events.persist_event(event, PersistContext(outlier=True))
        await self._members.set_outlier_membership(user_id, event.room_id, event.event_id,
                                                   membership, ordering)
        self._notifier.on_new_event("room", ordering, users=[user_id])
        return ordering

    async def reject_remote_invite(self, user_id: str, room_id: str,
                                   content: Mapping[str, Any]) -> MembershipResult:
        """Reject an invite to (or retract a knock on) a room we are not in:
        make_leave/send_leave through the inviter's server (for a knock, the servers of
        the room's stripped state), then the room's, and keep the leave so /sync
        shows it.

        Raises:
            MatrixError: 403 M_FORBIDDEN without an invite or knock to take back; the
                last resident's 4xx error or 502 when no server took the leave.
        """
        invite = await self._members.get_local_membership(user_id, room_id)
        if invite is None or invite.membership not in ("invite", "knock"):
            raise MatrixError(403, Codes.FORBIDDEN,
                              f"{user_id} has no invite to or knock on {room_id}")
        invite_event = await self._events.get_event(invite.event_id)
        hints: list[str] = []
        if invite_event is not None and invite.membership == "invite":
            hints = [d for d in [_domain(invite_event.sender)] if d]
        elif invite_event is not None:
            unsigned = invite_event.pdu_json.get("unsigned")
            state = unsigned.get("knock_room_state") if isinstance(unsigned, dict) else None
            hints = [d for e in (state if isinstance(state, list) else [])
                     if isinstance(e, dict) and isinstance(e.get("sender"), str)
                     for d in [_domain(e["sender"])] if d]
        last: Exception | None = None
        for server in self.candidate_servers(room_id, hints):
            try:
                _, event = await self._make_and_sign(server, room_id, user_id, "leave",
                                                     content)
                await self._hs.get_federation_client().put_json(
                    server, f"/_matrix/federation/v2/send_leave/{_quote(room_id)}/"
                    f"{_quote(event.event_id)}", federation_pdu(event))
            except FederationRequestError as e:
                logger.info("Rejecting the invite to %s through %s failed: %s", room_id,
                            server, e)
                last = e
                continue
            ordering = await self._events.persist_event(event, PersistContext(outlier=True))
            await self._members.set_outlier_membership(user_id, room_id, event.event_id,
                                                       "leave", ordering)
            self._notifier.on_new_event("room", ordering, users=[user_id])
            return MembershipResult(event, ordering)
        raise _client_error(last, "leave")

    async def send_invite(self, event: Event, state: Mapping[StateKey, str]) -> Event:
        """Have the invitee's server countersign an invite (`PUT /v2/invite`), with the
        room's stripped state; returns the invite signed by both servers.

        Raises:
            MatrixError: the invitee server's 4xx refusal (403 M_FORBIDDEN, 400
                M_INCOMPATIBLE_ROOM_VERSION…); 502 when it cannot be reached or answers
                with an event that is not ours or not signed by it.
        """
        assert event.state_key is not None
        server = _domain(event.state_key)
        assert server is not None
        wanted = [v for (t, k), v in state.items()
                  if (t in STRIPPED_STATE_TYPES and k == "")
                  or (t == "m.room.member" and k == event.sender)]
        loaded = await self._redactions.get_events(wanted)
        room_state = [federation_pdu(loaded[e]) for e in wanted if e in loaded]
        body = {"room_version": event.room_version.identifier, "event": federation_pdu(event),
                "invite_room_state": room_state}
        try:
            answer = await self._hs.get_federation_client().put_json(
                server, f"/_matrix/federation/v2/invite/{_quote(event.room_id)}/"
                f"{_quote(event.event_id)}", body)
        except FederationRequestError as e:
            raise _client_error(e, "invite") from None
        signed = answer.get("event") if isinstance(answer, dict) else None
        countersigned = await self._countersigned(signed, event, server)
        if server not in countersigned.pdu_json.get("signatures", {}):
            raise MatrixError(502, Codes.UNKNOWN,
                              f"{server} did not countersign the invite")
        return countersigned


def _client_error(error: Exception | None, action: str) -> MatrixError:
    """What the client sees when no server took our membership event: a resident's
    4xx passed through (but parameter errors are ours: 502), else 502."""
    if isinstance(error, MatrixError):
        return error
    if isinstance(error, FederationRequestError) and error.code is not None \
            and 400 <= error.code < 500 and error.code != 429 \
            and error.errcode not in (None, Codes.MISSING_PARAM, Codes.INVALID_PARAM,
                                      Codes.UNRECOGNIZED):
        body = error.body if isinstance(error.body, dict) else {}
        extra = {k: v for k, v in body.items() if k not in ("errcode", "error")}
        return MatrixError(error.code, str(error.errcode),
                           str(body.get("error") or f"Remote server refused the {action}"),
                           **extra)
    return MatrixError(502, Codes.UNKNOWN, f"Failed to {action} through any server: {error}")
