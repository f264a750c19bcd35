"""Media through the real server process: large uploads are streamed (the server's memory
does not grow with the file), downloads stream with ranges, oversize and aborted uploads
leave nothing behind."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import time
import unittest
from collections.abc import Iterator

from tests.integration.server_process import ServerProcess

MB = 1024 * 1024


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def chunks(total: int, size: int = MB) -> Iterator[bytes]:
    block = bytes(range(256)) * (size // 256)
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece


class MediaProcessTestCase(unittest.TestCase):
    server: ServerProcess
    token: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess(config_overrides={"max_upload_size": "64M"})
        cls.server.start()
        cls.server.register_user("alice", "alice-password-1")
        cls.token = cls.server.login("alice", "alice-password-1")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)

    def upload_stream(self, total: int, chunked: bool = False) -> tuple[int, dict[str, str]]:
        conn = self.connection()
        headers = {"Authorization": f"Bearer {self.token}",
                   "Content-Type": "application/octet-stream"}
        if not chunked:
            headers["Content-Length"] = str(total)
        conn.request("POST", "/_matrix/media/v3/upload?filename=big.bin", body=chunks(total),
                     headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
        conn.close()
        return response.status, body

    def store_files(self) -> list[str]:
        root = os.path.join(self.server.data_dir, "media_store")
        return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]

    def test_large_upload_streams(self) -> None:
        """A 48 MB upload and its download leave the server's RSS within 24 MB of where
        it was, and the downloaded bytes hash like the uploaded ones."""
        assert self.server.proc is not None
        total = 48 * MB
        before = rss_kb(self.server.proc.pid)
        code, body = self.upload_stream(total)
        self.assertEqual(code, 200, body)
        after_upload = rss_kb(self.server.proc.pid)
        mxc = body["content_uri"].removeprefix("mxc://")
        conn = self.connection()
        conn.request("GET", f"/_matrix/client/v1/media/download/{mxc}",
                     headers={"Authorization": f"Bearer {self.token}"})
        response = conn.getresponse()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.getheader("Content-Length"), str(total))
        digest = hashlib.sha256()
        while data := response.read(MB):
            digest.update(data)
        conn.close()
        after_download = rss_kb(self.server.proc.pid)
        expected = hashlib.sha256(b"".join(chunks(total))).hexdigest()
        self.assertEqual(digest.hexdigest(), expected)
        self.assertLess(after_upload - before, 24 * 1024, (before, after_upload))
        self.assertLess(after_download - before, 24 * 1024, (before, after_download))

    def test_range_download(self) -> None:
        """A ranged GET on the real server answers 206 with just those bytes."""
        code, body = self.upload_stream(3 * MB)
        mxc = body["content_uri"].removeprefix("mxc://")
        status, headers, raw = self.server.request(
            "GET", f"/_matrix/client/v1/media/download/{mxc}", token=self.token,
            headers={"Range": f"bytes={MB}-{MB + 9}"})
        self.assertEqual(status, 206)
        self.assertEqual(raw, bytes(range(10)))
        self.assertEqual(headers["Content-Range"], f"bytes {MB}-{MB + 9}/{3 * MB}")

    def test_oversize_upload(self) -> None:
        """Past max_upload_size the upload is 413 M_TOO_LARGE, whether the length is
        declared or the body is chunked."""
        for chunked in (False, True):
            code, body = self.upload_stream(65 * MB, chunked=chunked)
            self.assertEqual(code, 413, body)
            self.assertEqual(body["errcode"], "M_TOO_LARGE")

    def test_aborted_upload_leaves_nothing(self) -> None:
        """A client that drops the connection mid-upload leaves no file in the store."""
        before = set(self.store_files())
        sock = socket.create_connection(("127.0.0.1", self.server.port))
        sock.sendall((f"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {self.token}\r\n"
                      f"Content-Length: {20 * MB}\r\n\r\n").encode())
        sock.sendall(b"x" * (2 * MB))
        sock.close()
        time.sleep(0.5)
        self.assertEqual(set(self.store_files()), before)
        # and the server is fine afterwards
        code, _ = self.upload_stream(1000)
        self.assertEqual(code, 200)
