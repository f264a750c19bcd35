"""Pure helpers of the media repository: byte ranges, Content-Disposition both ways."""

from __future__ import annotations

import unittest

from handlers.media.remote import disposition_file_name
from rest.media.responses import content_disposition, parse_range


class RangeTestCase(unittest.TestCase):
    def test_ranges(self) -> None:
        """Single ranges as (start, length); None for the whole file; False if
        unsatisfiable (RFC 9110 14.1.2)."""
        cases = [
            (None, None), ("bytes=0-9", (0, 10)), ("bytes=5-", (5, 95)),
            ("bytes=-10", (90, 10)), ("bytes=-500", (0, 100)), ("bytes=90-500", (90, 10)),
            ("bytes=100-", False), ("bytes=9-5", False), ("bytes=-0", False),
            ("bytes=0-1,5-6", None), ("items=0-1", None), ("bytes=-", None),
        ]
        for header, expected in cases:
            with self.subTest(header):
                self.assertEqual(parse_range(header, 100), expected)


class DispositionTestCase(unittest.TestCase):
    def test_outgoing(self) -> None:
        """Token names plain, others RFC 5987-encoded; inline only for safe types."""
        self.assertEqual(content_disposition("image/png; charset=x", "a.png"),
                         "inline; filename=a.png")
        self.assertEqual(content_disposition("text/html", None), "attachment")
        self.assertEqual(content_disposition("text/plain", 'we"ird;name'),
                         "inline; filename*=utf-8''we%22ird%3Bname")

    def test_incoming(self) -> None:
        """Remote names: filename* preferred, quoted names unescaped, paths and control
        characters dropped."""
        cases = [
            ("inline; filename=a.png", "a.png"),
            ('attachment; filename="a \\"b\\".png"', 'a "b".png'),
            ("inline; filename*=utf-8''%C3%A9t%C3%A9.jpg; filename=x", "été.jpg"),
            ('inline; filename="../../etc/passwd"', "passwd"),
            ('inline; filename="a\x01b"', None), ("inline", None), (None, None),
        ]
        for header, expected in cases:
            with self.subTest(header):
                self.assertEqual(disposition_file_name(header), expected)
