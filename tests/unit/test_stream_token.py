"""Sync tokens: round trip, old short tokens, and rejection of anything else."""

from __future__ import annotations

import unittest

from homeserver.stream_token import StreamToken


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
