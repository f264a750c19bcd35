"""Sync and pagination tokens: round trip, old short tokens, and rejection of anything
else."""

from __future__ import annotations

import unittest

from homeserver.stream_token import StreamToken, TopologicalToken, parse_pagination_token


class StreamTokenTestCase(unittest.TestCase):
    def test_round_trip(self) -> None:
        token = StreamToken(room=1042, presence=3, typing=1_700_000_000_123, receipt=17,
                            account_data=2, push_rules=0, to_device=5, device_list=9)
        text = token.serialize()
        self.assertEqual(text, "s1042_3_1700000000123_17_2_0_5_9")
        self.assertEqual(StreamToken.parse(text), token)

    def test_short_token_fills_zeros(self) -> None:
        self.assertEqual(StreamToken.parse("s7_1"), StreamToken(room=7, presence=1))

    def test_rejects_garbage(self) -> None:
        for text in ("", "s", "x1_2", "s1_-2", "s1__2", "s1_2_3_4_5_6_7_8_9", "s1 2",
                     "s" + "9" * 300, "t5-6"):
            with self.assertRaises(ValueError, msg=text):
                StreamToken.parse(text)

    def test_advanced_past(self) -> None:
        a = StreamToken(room=5, receipt=2)
        self.assertTrue(a.replace(receipt=3).advanced_past(a))
        self.assertFalse(a.advanced_past(a))
        self.assertFalse(a.replace(room=4).advanced_past(a))


class TopologicalTokenTestCase(unittest.TestCase):
    def test_round_trip(self) -> None:
        """`t<depth>-<stream>`, with negative stream orderings of backfilled history."""
        for token, text in ((TopologicalToken(42, 1037), "t42-1037"),
                            (TopologicalToken(7, -20), "t7--20"),
                            (TopologicalToken(0, 0), "t0-0")):
            self.assertEqual(token.serialize(), text)
            self.assertEqual(TopologicalToken.parse(text), token)

    def test_orders_by_depth_then_stream(self) -> None:
        """Depth decides first: a backfilled event deeper than a live one sorts after it."""
        self.assertLess(TopologicalToken(3, 900), TopologicalToken(4, -5))
        self.assertLess(TopologicalToken(4, -6), TopologicalToken(4, -5))

    def test_rejects_garbage(self) -> None:
        """Anything but `t`, digits, `-`, an optionally negative integer is refused."""
        for text in ("t", "t5", "t5-", "t-1-3", "tx-3", "t3-x", "t3--", "t3-4-5", "t3-4_0",
                     "t 3-4", "t3-" + "9" * 60, "s5-6"):
            with self.assertRaises(ValueError, msg=text):
                TopologicalToken.parse(text)

    def test_pagination_token_accepts_both_forms(self) -> None:
        """A /messages `from` is a topological token or any sync token (also the `s-…`
        tokens older versions gave out in backfilled history)."""
        self.assertEqual(parse_pagination_token("t3-4"), TopologicalToken(3, 4))
        self.assertEqual(parse_pagination_token("s9_1_2"),
                         StreamToken(room=9, presence=1, typing=2))
        self.assertEqual(parse_pagination_token("s-20_0"), StreamToken(room=-20))
        for text in ("", "x", "t3", "s", "3-4"):
            with self.assertRaises(ValueError, msg=text):
                parse_pagination_token(text)
