"""Small room helpers for API tests: mix `RoomHelpers` into a `HomeserverTestCase`.

Rooms, messages and state go through the client API; membership changes go through
`RoomMemberHandler` so that tests do not depend on the membership servlets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.harness import HomeserverTestCase

    _Base = HomeserverTestCase
else:
    _Base = object

CLIENT = "/_matrix/client/v3"


class RoomHelpers(_Base):
    """Helpers that drive rooms; every one asserts that its request succeeded."""

    def create_room(self, token: str, body: dict[str, Any] | None = None) -> str:
        """POST /createRoom; returns the room ID."""
        # v12 room IDs hash the create event: identical ones in one millisecond collide.
        self.reactor.advance(0.01)
        channel = self.make_request("POST", f"{CLIENT}/createRoom", body or {},
                                    access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        room_id: str = channel.json_body["room_id"]
        return room_id

    def send_message(self, token: str, room_id: str, body: str = "hi",
                     txn_id: str | None = None) -> str:
        """PUT /send/m.room.message; returns the event ID."""
        self._room_txn = getattr(self, "_room_txn", 0) + 1
        txn = txn_id or f"helper{self._room_txn}"
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{room_id}/send/m.room.message/{txn}",
            {"msgtype": "m.text", "body": body}, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        event_id: str = channel.json_body["event_id"]
        return event_id

    def send_state(self, token: str, room_id: str, event_type: str, content: dict[str, Any],
                   state_key: str = "") -> str:
        """PUT /state/{type}/{stateKey}; returns the event ID."""
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{room_id}/state/{event_type}/{state_key}", content,
            access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        event_id: str = channel.json_body["event_id"]
        return event_id

    def set_membership(self, sender: str, room_id: str, target: str, membership: str) -> str:
        """Send an m.room.member event through the handler; returns the event ID."""
        sent = self.get_success(self.hs.get_room_member_handler().update_membership(
            sender, room_id, target, membership))
        event_id: str = sent.event.event_id
        return event_id

    def invite(self, sender: str, room_id: str, target: str) -> str:
        return self.set_membership(sender, room_id, target, "invite")

    def join(self, user_id: str, room_id: str) -> str:
        return self.set_membership(user_id, room_id, user_id, "join")

    def leave(self, user_id: str, room_id: str) -> str:
        return self.set_membership(user_id, room_id, user_id, "leave")

    def state_content(self, room_id: str, event_type: str,
                      state_key: str = "") -> dict[str, Any] | None:
        """The content of one current state entry (read from the store), or None."""
        stores = self.hs.get_datastores()
        current = self.get_success(stores.state.get_current_state_ids(room_id))
        event_id = current.get((event_type, state_key))
        if event_id is None:
            return None
        event = self.get_success(stores.events.get_event(event_id))
        return dict(event.content) if event is not None else None
