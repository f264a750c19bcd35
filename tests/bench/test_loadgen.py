"""The load generator's own parts: HTTP client, MAC, percentiles, /proc readings, CLI."""

from __future__ import annotations

import asyncio
import os
import unittest

from handlers.admin_register import compute_mac
from tests.bench.httpclient import HttpPool
from tests.bench.loadgen import build_parser, format_table
from tests.bench.matrix import registration_mac
from tests.bench.metrics import cpu_seconds, machine_busy_seconds, memory_kib, percentile


async def _serve(responses: list[bytes], seen: list[bytes]) -> tuple[asyncio.Server, int]:
    """A raw server: each connection gets the next scripted responses, one per request."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while responses:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            reply = responses.pop(0)
            if reply == b"CLOSE":
                writer.close()
                return
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class HttpClientTest(unittest.TestCase):
    def _run(self, responses: list[bytes], requests: int) -> tuple[list, list[bytes], int]:
        seen: list[bytes] = []

        async def go() -> tuple[list, int]:
            server, port = await _serve(responses, seen)
            pool = HttpPool(f"http://127.0.0.1:{port}", 4)
            conn = pool.new_connection()
            out = []
            connects = 0
            for _ in range(requests):
                if conn._writer is None:
                    connects += 1
                out.append(await pool.request("PUT", "/x", b'{"a":1}', {"A": "b"}, conn))
            pool.close()
            server.close()
            await server.wait_closed()
            return out, connects

        out, connects = asyncio.run(go())
        return out, seen, connects

    def test_keep_alive_content_length_and_chunked(self) -> None:
        """Two responses (sized, then chunked) are read from one reused connection."""
        out, seen, connects = self._run([
            b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\n{\"b\"\r\n3\r\n:2}\r\n0\r\n\r\n",
        ], 2)
        self.assertEqual([(r.status, r.json()) for r in out], [(200, {"a": 1}), (404, {"b": 2})])
        self.assertEqual(connects, 1)
        self.assertIn(b"Content-Length: 7", seen[0])
        self.assertIn(b"A: b", seen[0])

    def test_idle_close_is_retried_on_a_new_connection(self) -> None:
        """A keep-alive connection the server closed is replaced and the request resent."""
        out, seen, _ = self._run([
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            b"CLOSE",
            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"ok\":1}",
        ], 2)
        self.assertEqual(out[1].json(), {"ok": 1})
        self.assertEqual(len(seen), 3)

    def test_rejects_non_http_url(self) -> None:
        """Only http and https base URLs are accepted."""
        with self.assertRaises(ValueError):
            HttpPool("ftp://example.org", 1)


class HelpersTest(unittest.TestCase):
    def test_mac_matches_the_server(self) -> None:
        """The registration MAC is the one the shared-secret endpoint verifies."""
        self.assertEqual(registration_mac("s3cret", "n0nce", "bob", "pw"),
                         compute_mac("s3cret", "n0nce", "bob", "pw", admin=False))

    def test_percentile_nearest_rank(self) -> None:
        """p50/p99 use the nearest rank; an empty list gives 0."""
        values = [float(v) for v in range(1, 101)]
        self.assertEqual(percentile(values, 50), 50.0)
        self.assertEqual(percentile(values, 99), 99.0)
        self.assertEqual(percentile(values, 100), 100.0)
        self.assertEqual(percentile([3.0], 99), 3.0)
        self.assertEqual(percentile([], 50), 0.0)

    def test_proc_readings_of_this_process(self) -> None:
        """CPU seconds grow with work and RSS is read from /proc/PID/status."""
        before = cpu_seconds(os.getpid())
        sum(i * i for i in range(3_000_000))
        self.assertGreater(cpu_seconds(os.getpid()), before)
        self.assertGreaterEqual(machine_busy_seconds(), cpu_seconds(os.getpid()) - 1)
        mem = memory_kib(os.getpid())
        self.assertGreater(mem["VmRSS"], 1000)
        self.assertGreaterEqual(mem["VmHWM"], mem["VmRSS"])

    def test_cli_requires_a_way_to_register(self) -> None:
        """Without --shared-secret or --open-registration the CLI refuses to start."""
        with self.assertRaises(SystemExit):
            build_parser().parse_args(["send"])
        args = build_parser().parse_args(["send-history", "--open-registration",
                                          "--history", "1_000,50000"])
        self.assertEqual(args.history, [1000, 50000])
        self.assertEqual(args.concurrency, 32)
        self.assertEqual(args.members, 50)

    def test_table_has_one_line_per_result(self) -> None:
        """The table shows rate, percentiles and server CPU per 1,000 ops."""
        row = {"scenario": "send", "unit": "events", "concurrency": 32, "members": 50,
               "ops": 1000, "errors": 0, "seconds": 2.0, "rate_per_s": 500.0,
               "latency_ms": {"p50": 10.0, "p90": 12.0, "p99": 20.0, "max": 30.0},
               "server_cpu_s_per_1k": 1.5, "client_cpu_s_per_1k": 0.1,
               "server_rss_mib": 80.0}
        lines = format_table([row]).splitlines()
        self.assertEqual(len(lines), 3)
        self.assertIn("500.0 events", lines[2])
        self.assertIn("1.5", lines[2])
