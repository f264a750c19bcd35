"""The decoder for JSON from outside: what it refuses and what it keeps."""

from __future__ import annotations

import unittest

from homeserver.json_decode import MAX_DEPTH, JsonDecodeError, decode_json


class DecodeJsonTest(unittest.TestCase):
    def test_ordinary_values_decode(self) -> None:
        """Objects, lists, strings with escapes, ints and finite floats decode as json does."""
        self.assertEqual(decode_json(b'{"a": [1, 2.5, "\\u00e9\\ud83d\\ude00", null]}'),
                         {"a": [1, 2.5, "\u00e9\U0001f600", None]})

    def test_nesting_at_the_limit_is_kept(self) -> None:
        """A value exactly MAX_DEPTH deep is accepted."""
        text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
        self.assertIsInstance(decode_json(text.encode()), list)

    def test_nesting_past_the_limit_is_refused(self) -> None:
        """One level deeper than MAX_DEPTH, in objects or arrays, is refused."""
        for opener, closer in (("[", "]"), ('{"a":', "}")):
            text = opener * (MAX_DEPTH + 1) + "1" + closer * (MAX_DEPTH + 1)
            with self.assertRaises(JsonDecodeError):
                decode_json(text.encode())

    def test_very_deep_nesting_is_refused_without_recursion_error(self) -> None:
        """20,000 levels raise JsonDecodeError, not RecursionError."""
        with self.assertRaises(JsonDecodeError):
            decode_json(b"[" * 20_000 + b"]" * 20_000)

    def test_many_flat_brackets_are_not_depth(self) -> None:
        """Many sibling containers (shallow) pass even though the bracket count is high."""
        text = "[" + ",".join(["{}"] * (MAX_DEPTH * 4)) + "]"
        self.assertEqual(len(decode_json(text.encode())), MAX_DEPTH * 4)

    def test_lone_surrogates_are_refused(self) -> None:
        """A lone high or low surrogate in a value or a key is refused."""
        for text in (b'{"a": "\\ud800"}', b'{"\\uDC00": 1}', b'["x\\uDBFFy"]'):
            with self.assertRaises(JsonDecodeError, msg=text):
                decode_json(text)

    def test_escaped_backslash_before_u_is_not_a_surrogate(self) -> None:
        """`\\\\ud800` is a backslash then text, not an escape: it is kept."""
        self.assertEqual(decode_json(b'["\\\\ud800"]'), ["\\ud800"])

    def test_non_finite_numbers_are_refused(self) -> None:
        """1e400, -1e400, NaN and Infinity are refused."""
        for text in (b"[1e400]", b"[-1e400]", b"[NaN]", b"[Infinity]", b"[-Infinity]"):
            with self.assertRaises(JsonDecodeError, msg=text):
                decode_json(text)

    def test_invalid_utf8_and_garbage_are_refused(self) -> None:
        """Bytes that are not UTF-8, and text that is not JSON, are refused."""
        for raw in (b'{"a": "\xff"}', b"{", b"", b"[1,]"):
            with self.assertRaises(JsonDecodeError, msg=raw):
                decode_json(raw)

    def test_str_input_with_literal_surrogate_is_refused(self) -> None:
        """A str that holds a literal lone surrogate is refused too."""
        with self.assertRaises(JsonDecodeError):
            decode_json('["\ud800"]')
