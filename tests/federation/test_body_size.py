"""Request body limits per path, through the listener's real Twisted site: a full valid
transaction (50 PDUs of nearly 64 KiB) fits on federation paths, while client paths of
the same listener keep `max_request_body_size`."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from federation.pdu_limits import MAX_PDU_SIZE, MAX_PDUS_PER_TRANSACTION
from homeserver.app import build_site
from homeserver.config import DEFAULT_FEDERATION_MAX_REQUEST_BODY_SIZE, ListenerConfig
from tests.federation.fed_helpers import install_remote
from tests.federation.txn_helpers import SEND, RemoteRoomHelpers
from tests.harness import HomeserverTestCase


def _listener(*resources: str) -> ListenerConfig:
    return ListenerConfig(port=0, bind_addresses=("127.0.0.1",), type="http", tls=False,
                          x_forwarded=False, resources=resources)


class BodySizeTestCase(RemoteRoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.prepare_remote_room()

    def http(self, listener: ListenerConfig, method: str, path: str, body: bytes,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Send raw HTTP/1.1 to a fresh site for `listener`; returns (status, JSON)."""
        site = build_site(self.hs, listener)
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
        transport = StringTransport()
        channel.makeConnection(transport)
        head = [f"{method} {path} HTTP/1.1", "Host: test", f"Content-Length: {len(body)}",
                *(f"{k}: {v}" for k, v in (headers or {}).items())]
        channel.dataReceived(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        for _ in range(1000):
            if b"\r\n\r\n" in transport.value():
                break
            self.reactor.advance(0)
        raw = transport.value()
        channel.connectionLost(None)
        status_line, _, rest = raw.partition(b"\r\n")
        response_body = rest.partition(b"\r\n\r\n")[2]
        return int(status_line.split()[1]), json.loads(response_body or b"null")

    def signed_send(self, listener: ListenerConfig, txn_id: str,
                    body: dict[str, Any]) -> tuple[int, Any]:
        install_remote(self, self.remote)
        path = f"{SEND}/{txn_id}"
        auth = self.remote.auth_header("PUT", path, body, self.hs.hostname)
        return self.http(listener, "PUT", path, json.dumps(body).encode(),
                         {"Authorization": auth, "Content-Type": "application/json"})

    def test_full_transaction_is_accepted(self) -> None:
        """50 PDUs of ~64 KiB (over 3 MB, three times the client limit) are all stored,
        on a federation-only listener and on a combined one."""
        pdus = []
        prev: list[str] | None = None
        for _ in range(MAX_PDUS_PER_TRANSACTION):
            pdu = self.pdu_of_size(MAX_PDU_SIZE - 100, prev_events=prev)
            pdus.append(pdu)
            prev = [self.event_id_of(pdu)]
        body = {"origin": "remote.test", "origin_server_ts": 0, "pdus": pdus}
        self.assertGreater(len(json.dumps(body)), 3 * self.hs.config.max_request_body_size)
        code, answer = self.signed_send(_listener("federation"), "full", body)
        self.assertEqual(code, 200, answer)
        self.assertEqual(answer["pdus"], {self.event_id_of(p): {} for p in pdus})
        self.assertTrue(all(self.is_stored(p) for p in pdus))
        # The same size on a listener serving both APIs.
        code, answer = self.signed_send(_listener("client", "federation"), "full2",
                                        {**body, "pdus": pdus[:1]})
        self.assertEqual(code, 200, answer)

    def test_client_paths_keep_their_limit(self) -> None:
        """On a combined listener a client body over max_request_body_size is 413
        M_TOO_LARGE, while a federation body of that size reaches the servlet (401 here:
        unsigned)."""
        big = b'{"x": "' + b"a" * self.hs.config.max_request_body_size + b'"}'
        listener = _listener("client", "federation")
        code, body = self.http(listener, "POST", "/_matrix/client/v3/login", big)
        self.assertEqual((code, body["errcode"]), (413, "M_TOO_LARGE"))
        code, body = self.http(listener, "PUT", f"{SEND}/unsigned", big)
        self.assertEqual((code, body["errcode"]), (401, "M_UNAUTHORIZED"))
        # A client-only listener does not give federation paths the larger limit.
        code, body = self.http(_listener("client"), "PUT", f"{SEND}/x", big)
        self.assertEqual((code, body["errcode"]), (413, "M_TOO_LARGE"))

    def test_federation_limit(self) -> None:
        """A federation body over federation_max_request_body_size is 413 M_TOO_LARGE."""
        big = b"a" * (DEFAULT_FEDERATION_MAX_REQUEST_BODY_SIZE + 1)
        code, body = self.http(_listener("federation"), "PUT", f"{SEND}/huge", big)
        self.assertEqual((code, body["errcode"]), (413, "M_TOO_LARGE"))
