"""Media over federation, in memory: serving `/_matrix/federation/v1/media/download` as
multipart/mixed, and fetching remote media for local clients (the multipart answer, a
redirect in it, the legacy fallback for old servers, size limits, caching)."""

from __future__ import annotations

import re
from typing import IO, Any

from federation.client import FederationRequestError, FileDownload
from homeserver.errors import Codes
from rest.media.responses import multipart_response
from tests.federation.fed_helpers import RemoteServer, signed_request
from tests.harness import HomeserverTestCase, override_config

FED_DOWNLOAD = "/_matrix/federation/v1/media/download"
DATA = b"remote picture bytes " * 50


class FederationMediaServingTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.register_user("alice")
        token = self.login("alice")
        channel = self.make_request("POST", "/_matrix/media/v3/upload?filename=a.png", DATA,
                                    access_token=token, headers={"Content-Type": "image/png"})
        self.media_id = channel.json_body["content_uri"].rsplit("/", 1)[1]
        self.remote = RemoteServer("remote.example")

    def test_download_is_multipart(self) -> None:
        """A signed request gets multipart/mixed: a JSON object part, then the file with
        its type and disposition."""
        channel = signed_request(self, self.remote, "GET", f"{FED_DOWNLOAD}/{self.media_id}")
        self.assertEqual(channel.code, 200, channel.result)
        content_type = channel.response.content_type  # type: ignore[union-attr]
        m = re.fullmatch(r"multipart/mixed; boundary=(\S+)", content_type)
        assert m is not None, content_type
        boundary = m.group(1).encode()
        parts = channel.result.split(b"--" + boundary)
        self.assertEqual(parts[0], b"")
        self.assertEqual(parts[1], b"\r\nContent-Type: application/json\r\n\r\n{}\r\n")
        self.assertEqual(parts[2], b"\r\nContent-Type: image/png\r\n"
                                   b"Content-Disposition: inline; filename=a.png\r\n\r\n"
                         + DATA + b"\r\n")
        self.assertEqual(parts[3], b"--\r\n")

    def test_download_needs_signature(self) -> None:
        """Without X-Matrix the federation media endpoint answers 401."""
        channel = self.make_request("GET", f"{FED_DOWNLOAD}/{self.media_id}")
        self.assert_error(channel, 401, Codes.UNAUTHORIZED)

    def test_unknown_media(self) -> None:
        """Unknown or impossible media IDs are 404 M_NOT_FOUND."""
        for media_id in ("nosuchmedia", "..%2F..%2Fetc", "a%00b"):
            channel = signed_request(self, self.remote, "GET", f"{FED_DOWNLOAD}/{media_id}")
            self.assert_error(channel, 404, Codes.NOT_FOUND)


class FakeOrigin:
    """Stands in for the federation client: answers media fetches like a remote server."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.mode = "multipart"
        self.files: dict[str, tuple[str, bytes, str | None]] = {}

    async def get_file(self, destination: str, path: str, sink: IO[bytes], max_size: int,
                       query: dict[str, Any] | None = None, timeout: float = 60.0
                       ) -> FileDownload:
        self.calls.append(path)
        media_id = path.rsplit("/", 1)[1]
        if path.startswith(FED_DOWNLOAD):
            if self.mode == "legacy":
                raise FederationRequestError(destination, "404", 404,
                                             {"errcode": "M_UNRECOGNIZED"})
            if media_id not in self.files:
                raise FederationRequestError(destination, "404", 404,
                                             {"errcode": "M_NOT_FOUND"})
            media_type, data, name = self.files[media_id]
            if self.mode == "redirect":
                body = (b"--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\n"
                        b"Location: https://cdn.example/x\r\n\r\n\r\n--b--\r\n")
                return self._write(sink, max_size, body, "multipart/mixed; boundary=b")
            import tempfile
            with tempfile.NamedTemporaryFile() as f:
                f.write(data)
                f.flush()
                response = multipart_response({}, media_type, len(data), f.name, name)
                assert response.stream is not None
                body = response.stream.read_all()
            return self._write(sink, max_size, body, response.content_type)
        assert query is not None and query["allow_remote"] == "false", query
        media_type, data, name = self.files[media_id]
        headers = {"content-type": media_type}
        if name:
            headers["content-disposition"] = f"attachment; filename=\"{name}\""
        return self._write(sink, max_size, data, media_type, headers)

    async def get_url_file(self, url: str, sink: IO[bytes], max_size: int,
                           timeout: float = 60.0) -> FileDownload:
        self.calls.append(url)
        media_type, data, _ = next(iter(self.files.values()))
        return self._write(sink, max_size, data, media_type)

    def _write(self, sink: IO[bytes], max_size: int, body: bytes, content_type: str,
               headers: dict[str, str] | None = None) -> FileDownload:
        if len(body) > max_size:
            raise FederationRequestError("remote", "file is too large", 413)
        sink.write(body)
        return FileDownload(code=200, length=len(body),
                            headers={"content-type": content_type, **(headers or {})})


class RemoteMediaTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.register_user("bob")
        self.token = self.login("bob")
        self.origin = FakeOrigin()
        fetcher = hs.get_remote_media_fetcher()
        fetcher._federation = self.origin
        self.origin.files["pic"] = ("image/jpeg", DATA, "photo é.jpg")

    def download(self, media_id: str = "pic", path: str = "/_matrix/client/v1/media/download"
                 ) -> Any:
        return self.make_request("GET", f"{path}/remote.example/{media_id}",
                                 access_token=self.token)

    def test_fetch_and_cache(self) -> None:
        """Remote media is fetched once through the federation endpoint, served with its
        type and name, and then served from the cache."""
        channel = self.download()
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.result, DATA)
        self.assertEqual(channel.response.content_type, "image/jpeg")
        self.assertEqual(channel.header("Content-Disposition"),
                         "inline; filename*=utf-8''photo%20%C3%A9.jpg")
        self.assertEqual(self.download().result, DATA)
        self.assertEqual(self.origin.calls, [f"{FED_DOWNLOAD}/pic"])

    def test_legacy_fallback(self) -> None:
        """A server without the federation media endpoint is asked on the legacy
        `/_matrix/media/v3/download` path with allow_remote=false."""
        self.origin.mode = "legacy"
        channel = self.download()
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.result, DATA)
        self.assertEqual(self.origin.calls, [f"{FED_DOWNLOAD}/pic",
                                             "/_matrix/media/v3/download/remote.example/pic"])
        self.assertEqual(channel.header("Content-Disposition"),
                         "inline; filename*=utf-8''photo%20%C3%A9.jpg")

    def test_redirect_part(self) -> None:
        """A multipart answer whose file part is a `Location` is followed over plain HTTPS."""
        self.origin.mode = "redirect"
        channel = self.download()
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.result, DATA)
        self.assertEqual(self.origin.calls[-1], "https://cdn.example/x")

    def test_unknown_remote_media(self) -> None:
        """Media the origin does not have is 404 M_NOT_FOUND (and no legacy retry)."""
        channel = self.download("missing")
        self.assert_error(channel, 404, Codes.NOT_FOUND)
        self.assertEqual(self.origin.calls, [f"{FED_DOWNLOAD}/missing"])

    @override_config({"max_upload_size": 100})
    def test_remote_media_too_large(self) -> None:
        """Remote media over `max_upload_size` is refused with 413 and not cached."""
        channel = self.download()
        self.assert_error(channel, 413, Codes.TOO_LARGE)
        row = self.get_success(self.hs.get_datastores().media.get_remote_media(
            "remote.example", "pic"))
        self.assertIsNone(row)

    def test_allow_remote_false(self) -> None:
        """`allow_remote=false` does not ask the origin for media not cached."""
        channel = self.make_request(
            "GET", "/_matrix/client/v1/media/download/remote.example/pic?allow_remote=false",
            access_token=self.token)
        self.assert_error(channel, 404, Codes.NOT_FOUND)
        self.assertEqual(self.origin.calls, [])

    def test_legacy_endpoint_does_not_fetch(self) -> None:
        """With authenticated media on, the deprecated unauthenticated endpoint serves no
        remote media it has not cached (as Synapse)."""
        channel = self.make_request("GET",
                                    "/_matrix/media/v3/download/remote.example/pic")
        self.assert_error(channel, 404, Codes.NOT_FOUND)
        self.assertEqual(self.origin.calls, [])

    def test_bad_multipart(self) -> None:
        """A garbled multipart answer is a 502, never a 500, and nothing is cached."""

        async def garbled(destination: str, path: str, sink: IO[bytes], max_size: int,
                          query: Any = None, timeout: float = 60.0) -> FileDownload:
            sink.write(b"not multipart at all")
            return FileDownload(200, {"content-type": "multipart/mixed; boundary=zz"}, 20)

        self.origin.get_file = garbled  # type: ignore[method-assign]
        channel = self.download()
        self.assertEqual(channel.code, 502, channel.result)
        self.assertEqual(channel.json_body["errcode"], Codes.UNKNOWN)
