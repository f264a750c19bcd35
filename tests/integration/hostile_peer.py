"""A hostile homeserver on loopback, for the hostile-peer tests (tests/interop).

It is a real HTTPS server (its own ed25519 key, a self-signed certificate) named
`127.0.0.1:<port>`, so a target (an Axon or a Synapse process) reaches it straight by
discovery. It serves its key document, joins the target's rooms with make_join/send_join,
sends crafted PDUs and EDUs signed with X-Matrix, answers the target's requests back
(`/get_missing_events`, `/state`, `/state_ids`, `/event`, `/event_auth`), honestly by
default or as a case scripts it, and counts them.

PDUs are built with Axon's protocol model (content hash, event ID, signature), so a case
breaks exactly the rule it is about and nothing else.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import ssl
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from federation.auth import sign_request
from homeserver.event_hashing import (
    add_content_hash,
    canonical_json,
    compute_event_id,
    sign_event,
)
from homeserver.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.tls import generate_self_signed
from tests.federation.key_helpers import DAY_MS, FakeServer
from tests.integration.server_process import free_port

StateKey = tuple[str, str]
#: an override of one kind of inbound request: (path segments after the kind, query,
#: body) -> (status, JSON, or bytes sent as they are) or None to answer honestly
Responder = Callable[[list[str], dict[str, str], Any], tuple[int, Any] | None]

FED = "/_matrix/federation"
#: the inbound requests through which the target asks us for room data
ROOM_DATA_KINDS = ("get_missing_events", "state", "state_ids", "event", "event_auth",
                   "backfill")


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@attrs.define
class HostileRoom:
    """What the hostile server knows of a room it joined: the state it was given (plus
    its own accepted state events), the events to build on, the depth reached."""

    room_id: str
    version: RoomVersion
    state: dict[StateKey, str]
    latest: list[str]
    depth: int


class HostilePeer:
    """The fake server. `start()` it, aim it at `target` (a server name), `close()` it."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.server_name = f"127.0.0.1:{self.port}"
        self._keys = FakeServer(self.server_name, "h1")
        self.key = self._keys.key
        self._tmp = tempfile.TemporaryDirectory(prefix="axon-hostile-")
        self._cert = os.path.join(self._tmp.name, "tls.crt")
        self._tls_key = os.path.join(self._tmp.name, "tls.key")
        generate_self_signed(self._cert, self._tls_key, self.server_name)
        self._lock = threading.Lock()
        #: every event we know: ours and those the target sent or gave us
        self.events: dict[str, dict[str, Any]] = {}
        #: the state before each event we built (answers `/state` at it)
        self.state_before: dict[str, dict[StateKey, str]] = {}
        #: the room of every event in `events` (v12 create events have no `room_id`)
        self.event_room: dict[str, str] = {}
        #: events the target has (ours that it accepted, its own): gaps end there
        self.known_to_target: set[str] = set()
        #: events `/get_missing_events` never returns (a gap the target cannot close)
        self.withheld: set[str] = set()
        self.rooms: dict[str, HostileRoom] = {}
        self.overrides: dict[str, Responder] = {}
        #: (method, kind, path) of every inbound request, in order
        self.requests: list[tuple[str, str, str]] = []
        self._httpd: _TLSServer | None = None
        self._txn = 0

    # -- lifecycle --

    def start(self) -> None:
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                code, answer = peer._serve(self.command, self.path, raw)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self._cert, self._tls_key)
        httpd = _TLSServer(("127.0.0.1", self.port), Handler, ctx)
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, name="hostile-peer",
                         daemon=True).start()

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        self._tmp.cleanup()

    def reset(self) -> None:
        """Forget the previous case's scripted answers."""
        with self._lock:
            self.overrides.clear()
            self.withheld.clear()

    def on(self, kind: str, responder: Responder) -> None:
        """Answer this kind of request (`get_missing_events`, `state`…) with `responder`
        until the next `reset()`."""
        with self._lock:
            self.overrides[kind] = responder

    # -- counting --

    def mark(self) -> int:
        with self._lock:
            return len(self.requests)

    def count(self, *kinds: str, since: int = 0) -> int:
        with self._lock:
            return sum(1 for _, kind, _ in self.requests[since:] if kind in kinds)

    def requests_since(self, since: int) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self.requests[since:])

    # -- inbound --

    def _serve(self, method: str, target: str, raw: bytes) -> tuple[int, Any]:
        parsed = urllib.parse.urlsplit(target)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        segments = [urllib.parse.unquote(s) for s in parsed.path.split("/") if s]
        if segments[:3] == ["_matrix", "key", "v2"]:
            kind, rest = "key", segments[3:]
        elif segments[:2] == ["_matrix", "federation"] and len(segments) > 3:
            kind, rest = segments[3], segments[4:]
        else:
            kind, rest = "?", segments
        with self._lock:
            self.requests.append((method, kind, parsed.path))
            override = self.overrides.get(kind)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"errcode": "M_NOT_JSON", "error": "bad JSON"}
        if override is not None:
            answer = override(rest, query, body)
            if answer is not None:
                return answer
        return self._honest(kind, rest, query, body)

    def _honest(self, kind: str, rest: list[str], query: dict[str, str],
                body: Any) -> tuple[int, Any]:
        not_found = (404, {"errcode": "M_NOT_FOUND", "error": "not here"})
        if kind == "key":
            return 200, self.key_document()
        if kind == "send":
            for pdu in (body or {}).get("pdus", []):
                self.learn(pdu)
            return 200, {"pdus": {}}
        if kind == "event":
            pdu = self.events.get(rest[0]) if rest else None
            if pdu is None:
                return not_found
            return 200, {"origin": self.server_name, "origin_server_ts": now_ms(),
                         "pdus": [pdu]}
        if kind in ("state", "state_ids"):
            state = self.state_before.get(query.get("event_id", ""))
            if state is None:
                return not_found
            return 200, self.state_answer(list(state.values()), ids_only=kind == "state_ids")
        if kind == "event_auth":
            if len(rest) < 2 or rest[1] not in self.events:
                return not_found
            chain = self.auth_chain(self.events[rest[1]]["auth_events"])
            return 200, {"auth_chain": [self.events[e] for e in chain]}
        if kind == "get_missing_events":
            return 200, {"events": self.missing_events(body or {})}
        if kind == "backfill":
            return 200, {"origin": self.server_name, "origin_server_ts": now_ms(),
                         "pdus": []}
        return not_found

    def key_document(self) -> dict[str, Any]:
        return self._keys.key_response(now_ms() + DAY_MS)

    def state_answer(self, state_ids: list[str], ids_only: bool) -> dict[str, Any]:
        """A `/state` or `/state_ids` answer for the given state (auth chain computed)."""
        chain = self.auth_chain([a for s in state_ids if s in self.events
                                 for a in self.events[s]["auth_events"]])
        if ids_only:
            return {"pdu_ids": state_ids, "auth_chain_ids": chain}
        return {"pdus": [self.events[s] for s in state_ids],
                "auth_chain": [self.events[e] for e in chain]}

    def auth_chain(self, event_ids: Iterable[str]) -> list[str]:
        seen: dict[str, None] = {}
        todo = list(event_ids)
        while todo:
            event_id = todo.pop()
            if event_id in seen or event_id not in self.events:
                continue
            seen[event_id] = None
            todo.extend(self.events[event_id]["auth_events"])
        return list(seen)

    def missing_events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Honest `/get_missing_events`: our events between `latest_events` and what the
        target has, oldest first, never a withheld one (nor anything behind it)."""
        earliest = set(body.get("earliest_events", []))
        limit = int(body.get("limit", 10))
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        frontier = list(body.get("latest_events", []))
        while frontier and len(found) < limit:
            nxt: list[str] = []
            for event_id in frontier:
                for prev in self.events.get(event_id, {}).get("prev_events", []):
                    if prev in seen or prev in earliest or prev in self.withheld \
                            or prev in self.known_to_target or prev not in self.events:
                        continue
                    seen.add(prev)
                    found.append(self.events[prev])
                    nxt.append(prev)
            frontier = nxt
        return sorted(found[:limit], key=lambda e: e["depth"])

    def learn(self, pdu: Any, room_id: str | None = None) -> str | None:
        """Remember an event the target sent or served; returns its ID."""
        room_id = room_id or (pdu.get("room_id") if isinstance(pdu, dict) else None)
        if not isinstance(pdu, dict) or room_id not in self.rooms:
            return None
        event_id = compute_event_id(pdu, self.rooms[room_id].version)
        with self._lock:
            self.events.setdefault(event_id, pdu)
            self.event_room[event_id] = room_id
            self.known_to_target.add(event_id)
        return event_id

    # -- outbound --

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             timeout: float = 90) -> tuple[int, Any]:
        """One signed request to the target; returns (status, parsed JSON or text)."""
        if raw is None and body is not None:
            raw = json.dumps(body).encode()
            auth = sign_request(self.server_name, self.target, method, path, body, self.key)
        elif raw is not None:
            auth = self._sign_raw(method, path, raw)
        else:
            auth = sign_request(self.server_name, self.target, method, path, None, self.key)
        host, port = self.target.rsplit(":", 1)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=timeout)
        try:
            headers = {"Authorization": auth, "Content-Type": "application/json"}
            conn.request(method, path, body=raw, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(data) if data else None
        except ValueError:
            return resp.status, data.decode("utf-8", "replace")

    def _sign_raw(self, method: str, path: str, raw: bytes) -> str:
        """X-Matrix for a body we send as bytes (too deep for a JSON encoder): the signed
        object is spliced by hand, `content` being its first key in canonical order."""
        rest = canonical_json({"destination": self.target, "method": method,
                               "origin": self.server_name, "uri": path})
        signed = b'{"content":' + raw + b"," + rest[1:]
        sig = base64.b64encode(self.key.sign(signed).signature).rstrip(b"=").decode()
        return (f'X-Matrix origin="{self.server_name}",destination="{self.target}",'
                f'key="ed25519:{self.key.version}",sig="{sig}"')

    def send(self, pdus: Iterable[dict[str, Any]] = (), edus: Iterable[dict[str, Any]] = (),
             txn_id: str | None = None) -> tuple[int, Any]:
        """`PUT /send/{txnId}` with these PDUs and EDUs."""
        return self.call("PUT", f"{FED}/v1/send/{q(txn_id or self.next_txn())}",
                         self.transaction(pdus, edus))

    def transaction(self, pdus: Iterable[dict[str, Any]] = (),
                    edus: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
        return {"origin": self.server_name, "origin_server_ts": now_ms(),
                "pdus": list(pdus), "edus": list(edus)}

    def next_txn(self) -> str:
        with self._lock:
            self._txn += 1
            return f"h{time.monotonic_ns()}-{self._txn}"

    def user(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def join(self, room_id: str, localpart: str) -> tuple[HostileRoom, dict[str, Any]]:
        """Join with make_join + send_join (v2); returns the room and the send_join answer.

        Raises:
            AssertionError: the target refused.
        """
        user = self.user(localpart)
        code, made = self.call(
            "GET", f"{FED}/v1/make_join/{q(room_id)}/{q(user)}?ver=10&ver=11&ver=12")
        assert code == 200, f"make_join: {code} {made}"
        version = KNOWN_ROOM_VERSIONS[made["room_version"]]
        template = dict(made["event"])
        template["origin_server_ts"] = now_ms()
        join = self._finish(template, version)
        join_id = compute_event_id(join, version)
        code, answer = self.call("PUT", f"{FED}/v2/send_join/{q(room_id)}/{q(join_id)}", join)
        assert code == 200, f"send_join: {code} {answer}"
        room = self.rooms.get(room_id)
        if room is None:
            room = HostileRoom(room_id, version, {}, [], 0)
            self.rooms[room_id] = room
        for pdu in answer.get("auth_chain", []):
            self.learn(pdu, room_id)
        for pdu in answer.get("state", []):
            event_id = self.learn(pdu, room_id)
            if event_id is not None and "state_key" in pdu:
                room.state[(pdu["type"], pdu["state_key"])] = event_id
        self._record(room, join_id, join)
        self.accept(room, join_id)
        return room, answer

    # -- building PDUs --

    def _finish(self, pdu: dict[str, Any], version: RoomVersion) -> dict[str, Any]:
        return sign_event(add_content_hash(pdu), self.server_name, self.key, version)

    def _record(self, room: HostileRoom, event_id: str, pdu: dict[str, Any]) -> None:
        with self._lock:
            self.events[event_id] = pdu
            self.event_room[event_id] = room.room_id
            self.state_before[event_id] = dict(room.state)

    def auth_events_for(self, room: HostileRoom, sender: str, etype: str,
                        state_key: str | None, content: dict[str, Any]) -> list[str]:
        """The spec's auth event selection against what we know of the room's state
        (v12: the create event is implied by the room ID, never listed)."""
        keys: list[StateKey] = [("m.room.power_levels", ""), ("m.room.member", sender)]
        if not room.version.room_id_from_create_event:
            keys.insert(0, ("m.room.create", ""))
        if etype == "m.room.member" and state_key is not None:
            keys.append(("m.room.member", state_key))
            if content.get("membership") in ("join", "invite", "knock"):
                keys.append(("m.room.join_rules", ""))
        return list(dict.fromkeys(room.state[k] for k in keys if k in room.state))

    def build(self, room: HostileRoom, localpart: str, etype: str, content: dict[str, Any],
              state_key: str | None = None, *, prev_events: list[str] | None = None,
              auth_events: list[str] | None = None, depth: int | None = None,
              sender: str | None = None, tweak: Callable[[dict[str, Any]], None] | None = None
              ) -> tuple[str, dict[str, Any]]:
        """A signed PDU by `@localpart:us`, on top of `room.latest` unless told otherwise.

        `tweak` edits the PDU before it is hashed and signed (a valid envelope around a
        bad event). Returns (event ID, PDU); nothing is sent.
        """
        sender = sender or self.user(localpart)
        pdu: dict[str, Any] = {
            "room_id": room.room_id, "sender": sender, "type": etype,
            "content": content, "origin": self.server_name, "origin_server_ts": now_ms(),
            "depth": depth if depth is not None else room.depth + 1,
            "prev_events": list(prev_events if prev_events is not None else room.latest),
            "auth_events": list(auth_events if auth_events is not None else
                                self.auth_events_for(room, sender, etype, state_key,
                                                     content)),
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        if tweak is not None:
            tweak(pdu)
        pdu = self._finish(pdu, room.version)
        event_id = compute_event_id(pdu, room.version)
        self._record(room, event_id, pdu)
        return event_id, pdu

    def message(self, room: HostileRoom, text: str, localpart: str = "mallory",
                **kwargs: Any) -> tuple[str, dict[str, Any]]:
        return self.build(room, localpart, "m.room.message", {"msgtype": "m.text",
                                                               "body": text}, **kwargs)

    def accept(self, room: HostileRoom, event_id: str) -> None:
        """Build on this event from now on (the target accepted it)."""
        pdu = self.events[event_id]
        with self._lock:
            self.known_to_target.add(event_id)
        room.latest = [event_id]
        room.depth = max(room.depth, int(pdu["depth"]))
        if "state_key" in pdu:
            room.state[(pdu["type"], pdu["state_key"])] = event_id

    def fetch_event(self, event_id: str) -> dict[str, Any]:
        """An event of the target's, through `GET /event/{eventId}`."""
        code, answer = self.call("GET", f"{FED}/v1/event/{q(event_id)}")
        assert code == 200, f"/event {event_id}: {code} {answer}"
        pdu: dict[str, Any] = answer["pdus"][0]
        self.learn(pdu)
        return pdu

    def absorb(self, room: HostileRoom, event_id: str) -> None:
        """Take an event of the target's (e.g. a local user's state change) as the tip."""
        self.fetch_event(event_id)
        self.accept(room, event_id)


class _TLSServer(http.server.ThreadingHTTPServer):
    """HTTPS, with each TLS handshake in its connection's own thread (a stalled client
    never blocks the others)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, ctx: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self._ctx = ctx

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self._ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def nested_json(depth: int, key: str = "pdus") -> bytes:
    """A JSON object whose `key` holds `depth` nested arrays (canonical JSON; for the
    default key, a transaction body with `edus` first)."""
    nested = b"[" * depth + b"]" * depth
    if key == "pdus":
        return b'{"edus":[],"pdus":[' + nested + b"]}"
    return b'{"' + key.encode() + b'":' + nested + b"}"
