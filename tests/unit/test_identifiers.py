"""Identifier grammars (appendices.md, "Identifier Grammar"; client-server "Size limits")."""

from __future__ import annotations

import unittest

from homeserver.errors import MatrixError
from homeserver.identifiers import (
    EventID,
    RoomAlias,
    RoomID,
    UserID,
    is_valid_event_type,
    is_valid_localpart,
    is_valid_server_name,
    is_valid_state_key,
)
from homeserver.room_versions import KNOWN_ROOM_VERSIONS

V = KNOWN_ROOM_VERSIONS
HASH_URLSAFE = "31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM"  # 43 chars
HASH_STANDARD = "31hneApxJ+1o/63DmFrpeqnkFfWppnzWso1JvH3ogLM"
HASH_PLAIN = "31hneApxJa1ob63DmFrpeqnkFfWppnzWso1JvH3ogLM"  # valid in both alphabets


class ServerNameTestCase(unittest.TestCase):
    VALID = [
        "matrix.org", "matrix.org:8888", "1.2.3.4", "1.2.3.4:1234", "[1234:5678::abcd]",
        "[1234:5678::abcd]:5678", "localhost", "[::1]", "[::1]:8448", "[::ffff:1.2.3.4]:443",
        "MATRIX.ORG", "a-b.example", "matrix.org:65535", "[FE80::1]",
    ]
    INVALID = [
        "", "matrix.org:", "matrix.org:abc", "matrix.org:123456", "matrix.org:65536",
        "[1234:5678::abcd", "[1234:5678::abcd]x", "[::1]:", "[g::1]", "[1]", "exa mple.org",
        "example.org/path", "a" * 256, "1234:5678::abcd", "ex_ample.org", "[::1]:-1",
    ]

    def test_grammar_table(self) -> None:
        """The spec's example server names pass; malformed hosts, ports and IPv6 fail."""
        for name in self.VALID:
            with self.subTest(name=name):
                self.assertTrue(is_valid_server_name(name))
        for name in self.INVALID:
            with self.subTest(name=name):
                self.assertFalse(is_valid_server_name(name))


class UserIdTestCase(unittest.TestCase):
    def test_parse_and_historical(self) -> None:
        """User IDs parse (historical localparts included) and print back unchanged."""
        for s in ("@alice:example.org", "@a_b=c/d+e:[::1]:8448", "@Upper.Case!:example.org"):
            with self.subTest(s=s):
                self.assertEqual(str(UserID.parse(s)), s)
        self.assertTrue(is_valid_localpart("alice.b=c"))
        self.assertFalse(is_valid_localpart("Alice"))
        for bad in ("alice:example.org", "@alice", "@alice:", "@al ice:example.org",
                    "@" + "a" * 250 + ":example.org"):
            with self.subTest(bad=bad):
                self.assertFalse(UserID.is_valid(bad))


class RoomIdTestCase(unittest.TestCase):
    VALID = [
        ("!abc:example.org", "abc", "example.org"),
        ("!abc:[::1]:8448", "abc", "[::1]:8448"),
        ("!:example.org", "", "example.org"),
        ("!日本 語:example.org", "日本 語", "example.org"),
        ("!" + HASH_URLSAFE, HASH_URLSAFE, None),
    ]
    INVALID: list[object] = [
        "abc:example.org", "!abc", "!abc:", "!abc:bad_domain", "!abc:example.org:99999",
        "!" + HASH_URLSAFE[:-1], "!" + HASH_URLSAFE + "A", "!" + HASH_STANDARD,
        "!a\x00b:example.org", "!\ud800:example.org", "!" + "a" * 243 + ":example.org",
        "#abc:example.org", "$abc:example.org", "", "!", 123, None,
    ]

    def test_parse_table(self) -> None:
        """Both room ID forms parse into their parts and print back unchanged."""
        for s, opaque, domain in self.VALID:
            with self.subTest(s=s):
                room_id = RoomID.parse(s)
                self.assertEqual((room_id.opaque_id, room_id.domain), (opaque, domain))
                self.assertEqual(str(room_id), s)
                self.assertEqual(room_id, RoomID.parse(s))

    def test_invalid_table(self) -> None:
        """Bad sigils, domains, hash lengths/alphabets, NUL, surrogates, >255 bytes fail."""
        for s in self.INVALID:
            with self.subTest(s=s), self.assertRaises(MatrixError) as cm:
                RoomID.parse(s)  # type: ignore[arg-type]
            self.assertEqual(cm.exception.errcode, "M_INVALID_PARAM")

    def test_length_limit_is_bytes(self) -> None:
        """Exactly 255 bytes is accepted; one more (or multi-byte characters) is refused."""
        domain = ":example.org"
        self.assertTrue(RoomID.is_valid("!" + "a" * (254 - len(domain)) + domain))
        self.assertFalse(RoomID.is_valid("!" + "a" * (255 - len(domain)) + domain))
        self.assertFalse(RoomID.is_valid("!" + "é" * 122 + domain))

    def test_form_per_room_version(self) -> None:
        """v12 accepts only the hash form; v1–v11 accept only the domain form."""
        for version in (str(n) for n in range(1, 12)):
            self.assertTrue(RoomID.is_valid("!abc:example.org", V[version]))
            self.assertFalse(RoomID.is_valid("!" + HASH_URLSAFE, V[version]))
        self.assertTrue(RoomID.is_valid("!" + HASH_URLSAFE, V["12"]))
        self.assertFalse(RoomID.is_valid("!abc:example.org", V["12"]))


class EventIdTestCase(unittest.TestCase):
    def test_parse_forms(self) -> None:
        """Domain and hash event IDs parse into their parts and print back unchanged."""
        for s, opaque, domain in [("$abc:example.org", "abc", "example.org"),
                                  ("$0:domain", "0", "domain"),
                                  ("$" + HASH_URLSAFE, HASH_URLSAFE, None),
                                  ("$" + HASH_STANDARD, HASH_STANDARD, None)]:
            with self.subTest(s=s):
                event_id = EventID.parse(s)
                self.assertEqual((event_id.opaque_id, event_id.domain), (opaque, domain))
                self.assertEqual(str(event_id), s)

    def test_invalid(self) -> None:
        """Missing sigil, short/long hashes, bad domains and >255 bytes fail."""
        for s in ("abc:example.org", "$", "$abc", "$abc:", "$" + HASH_URLSAFE + "A",
                  "$a:b_c", "$" + "a" * 250 + ":example.org", "!abc:example.org", "$a\x00:x"):
            with self.subTest(s=s):
                self.assertFalse(EventID.is_valid(s))

    def test_form_per_room_version(self) -> None:
        """v1–v2 need `$id:domain`; v3 the standard alphabet; v4+ the URL-safe one."""
        table = [
            ("$abc:example.org", {"1", "2"}),
            ("$" + HASH_STANDARD, {"3"}),
            ("$" + HASH_URLSAFE, {str(n) for n in range(4, 13)}),
            ("$" + HASH_PLAIN, {str(n) for n in range(3, 13)}),
        ]
        for s, valid_in in table:
            for version in (str(n) for n in range(1, 13)):
                with self.subTest(s=s, version=version):
                    self.assertEqual(EventID.is_valid(s, V[version]), version in valid_in)


class RoomAliasTestCase(unittest.TestCase):
    def test_table(self) -> None:
        """Aliases need `#`, a non-empty localpart without NUL, a server name, ≤255 bytes."""
        for s in ("#room:example.org", "#日本:example.org:8448", "#a b!:[::1]", "#x:1.2.3.4"):
            with self.subTest(s=s):
                alias = RoomAlias.parse(s)
                self.assertEqual(str(alias), s)
        self.assertEqual(RoomAlias.parse("#room:example.org"),
                         RoomAlias("room", "example.org"))
        for s in ("#:example.org", "#room", "room:example.org", "#ro\x00om:x", "#a:b:c",
                  "#a:exa mple.org", "#" + "a" * 243 + ":example.org", "!room:example.org"):
            with self.subTest(s=s):
                self.assertFalse(RoomAlias.is_valid(s))


class EventKeysTestCase(unittest.TestCase):
    def test_event_type(self) -> None:
        """Event types are non-empty strings of at most 255 UTF-8 bytes."""
        for value, ok in [("m.room.message", True), ("a" * 255, True), ("é" * 127, True),
                          ("", False), ("a" * 256, False), ("é" * 128, False),
                          ("\ud800", False), (None, False), (1, False)]:
            with self.subTest(value=value):
                self.assertEqual(is_valid_event_type(value), ok)

    def test_state_key(self) -> None:
        """State keys are strings (empty allowed) of at most 255 UTF-8 bytes."""
        for value, ok in [("", True), ("@u:example.org", True), ("a" * 255, True),
                          ("a" * 256, False), ("é" * 128, False), ("\udfff", False),
                          (None, False), ([], False)]:
            with self.subTest(value=value):
                self.assertEqual(is_valid_state_key(value), ok)


if __name__ == "__main__":
    unittest.main()
