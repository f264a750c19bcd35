"""A real tus client (tuspy) uploads 50 MB to the real server, is cut off, and a fresh
client resumes from the server's offset; the result downloads byte for byte."""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import unittest
import urllib.parse
from typing import Any

from tusclient import client as tus_client

from tests.integration.server_process import ServerProcess

BASE = "/_matrix/client/unstable/io.axon/upload/resumable"
SIZE = 50 * 1024 * 1024
CHUNK = 4 * 1024 * 1024


def cut_off_patch(base_url: str, upload_url: str, token: str, offset: int) -> None:
    """Send a PATCH that announces 8 MB, deliver 3 MB and drop the connection."""
    parts = urllib.parse.urlsplit(urllib.parse.urljoin(base_url, upload_url))
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        head = (f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {8 * 1024 * 1024}\r\n\r\n")
        sock.sendall(head.encode() + b"\x00" * (3 * 1024 * 1024))


class TuspyResumeTests:
    engine = "sqlite3"

    def test_resume_interrupted_upload(self) -> None:
        """Part upload, a PATCH cut mid-body (not counted), then a new tuspy client resumes
        from HEAD's offset; the download matches the file's SHA-256."""
        t: Any = self
        server = ServerProcess(self.engine)
        data_file = tempfile.NamedTemporaryFile(delete=False)
        try:
            data = os.urandom(SIZE)
            data_file.write(data)
            data_file.close()
            server.start()
            server.register_user("alice", "correct horse")
            token = server.login("alice", "correct horse")
            auth = {"Authorization": f"Bearer {token}"}
            tus = tus_client.TusClient(server.base_url + BASE, headers=auth)

            first = tus.uploader(data_file.name, chunk_size=CHUNK,
                                 metadata={"filename": "big.bin",
                                           "filetype": "application/octet-stream"})
            first.upload(stop_at=5 * CHUNK)
            t.assertEqual(first.offset, 5 * CHUNK)
            upload_url = first.url

            cut_off_patch(server.base_url, upload_url, token, 5 * CHUNK)
            code, headers, _ = server.request("HEAD", urllib.parse.urlsplit(upload_url).path,
                                              token=token, headers={"Tus-Resumable": "1.0.0"})
            t.assertEqual((code, headers.get("Upload-Offset")), (200, str(5 * CHUNK)))

            second = tus_client.TusClient(server.base_url + BASE, headers=auth).uploader(
                data_file.name, url=upload_url, chunk_size=CHUNK)
            t.assertEqual(second.offset, 5 * CHUNK)  # read from HEAD
            second.upload()
            uri = second.request.response_headers.get("io-axon-content-uri")
            t.assertTrue(uri and uri.startswith("mxc://localhost/"), uri)

            code, headers, _ = server.request("HEAD", urllib.parse.urlsplit(upload_url).path,
                                              token=token, headers={"Tus-Resumable": "1.0.0"})
            t.assertEqual(headers.get("Io-Axon-Content-Uri"), uri)
            code, _, body = server.request(
                "GET", f"/_matrix/client/v1/media/download/{uri.removeprefix('mxc://')}",
                token=token)
            t.assertEqual(code, 200)
            t.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(data).hexdigest())
        except Exception:
            print(server.log())
            raise
        finally:
            os.unlink(data_file.name)
            server.close()


class SqliteTuspyResumeTestCase(TuspyResumeTests, unittest.TestCase):
    engine = "sqlite3"


class PostgresTuspyResumeTestCase(TuspyResumeTests, unittest.TestCase):
    engine = "psycopg2"
