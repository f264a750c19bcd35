"""Who the user directory may show: the rooms that make their members visible to every
searcher, and the SQL condition limiting a search to the users a searcher may find.

Synapse's rules (`user_directory.search_all_users: false`): a searcher finds the users
who share a room with them (both joined) and the users joined to a public room, one whose
current state has join rule `public` or history visibility `world_readable`. Both are
read from current membership (`local_current_membership`, indexed by user) and the
`user_directory_public_rooms` table, so a user vanishes as soon as that ends.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from storage.database import Transaction

StateKey = tuple[str, str]

JOIN_RULES: StateKey = ("m.room.join_rules", "")
HISTORY_VISIBILITY: StateKey = ("m.room.history_visibility", "")
#: the current-state keys that decide whether a room is public for the directory
PUBLICITY_KEYS = frozenset({JOIN_RULES, HISTORY_VISIBILITY})

#: `u.name` (the candidate) may be found by the searcher (the one `?` parameter)
VISIBLE_TO_SEARCHER_SQL = (
    "(EXISTS (SELECT 1 FROM local_current_membership pm"
    "  JOIN user_directory_public_rooms pr ON pr.room_id = pm.room_id"
    "  WHERE pm.user_id = u.name AND pm.membership = 'join')"
    " OR EXISTS (SELECT 1 FROM local_current_membership mine"
    "  JOIN local_current_membership theirs ON theirs.room_id = mine.room_id"
    "  WHERE mine.user_id = ? AND mine.membership = 'join'"
    "  AND theirs.user_id = u.name AND theirs.membership = 'join'))"
)


def _content(raw: Any) -> dict[str, Any]:
    try:
        content = json.loads(raw).get("content")
    except (TypeError, ValueError, AttributeError):
        return {}
    return content if isinstance(content, dict) else {}


def refresh_public_room_txn(txn: Transaction, room_id: str,
                            changed: Collection[StateKey]) -> None:
    """Re-decide whether the room is public after a change of its current state (call
    in the transaction that changes it, with the changed keys)."""
    if not PUBLICITY_KEYS & set(changed):
        return
    rows = txn.select_all(
        "SELECT c.type, e.json FROM current_state_events c"
        " JOIN events e ON e.event_id = c.event_id"
        " WHERE c.room_id = ? AND c.state_key = '' AND c.type IN (?, ?)",
        (room_id, JOIN_RULES[0], HISTORY_VISIBILITY[0]))
    public = False
    for event_type, raw in rows:
        content = _content(raw)
        if event_type == JOIN_RULES[0] and content.get("join_rule") == "public":
            public = True
        if event_type == HISTORY_VISIBILITY[0] \
                and content.get("history_visibility") == "world_readable":
            public = True
    txn.execute("DELETE FROM user_directory_public_rooms WHERE room_id = ?", (room_id,))
    if public:
        txn.insert("user_directory_public_rooms", {"room_id": room_id})
