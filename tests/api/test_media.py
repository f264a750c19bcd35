"""The media repository's client API: uploads, async uploads, downloads and their headers,
quotas, quarantine and retention. `MediaTestCase` runs on the local store; the S3 twin in
test_media_s3.py runs the same tests against a moto S3 server."""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from typing import Any

from homeserver.errors import Codes
from tests.harness import FakeChannel, HomeserverTestCase, override_config

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


class MediaTestCase(HomeserverTestCase):
    """The media API on the local-disk store (test_media_s3.py subclasses it for S3)."""

    def prepare(self, reactor: Any, hs: Any) -> None:
        self.register_user("alice")
        self.token = self.login("alice")
        self.register_user("bob")
        self.bob_token = self.login("bob")

    def upload(self, data: bytes, content_type: str | None = "image/png",
               filename: str | None = None, token: str | None = None) -> FakeChannel:
        path = "/_matrix/media/v3/upload"
        if filename is not None:
            path += "?filename=" + urllib.parse.quote(filename)
        headers = {"Content-Type": content_type} if content_type is not None else {}
        return self.make_request("POST", path, data, access_token=token or self.token,
                                 headers=headers)

    def upload_ok(self, data: bytes, **kwargs: Any) -> str:
        channel = self.upload(data, **kwargs)
        self.assertEqual(channel.code, 200, channel.result)
        uri: str = channel.json_body["content_uri"]
        return uri.removeprefix("mxc://")

    def download(self, server_and_id: str, suffix: str = "", token: str | None = None,
                 headers: dict[str, str] | None = None) -> FakeChannel:
        return self.make_request("GET", f"/_matrix/client/v1/media/download/{server_and_id}"
                                 f"{suffix}", access_token=token or self.token, headers=headers)

    def stored_files(self) -> list[str]:
        root = os.path.join(self.config.media_store_path, "sha256")
        return [f for _, _, files in os.walk(root) for f in files]

    # -- upload and download --

    def test_upload_then_download(self) -> None:
        """An upload returns an mxc URI on this server; downloading it gives the same bytes
        with its type, the safety headers and the file name."""
        mxc = self.upload_ok(PNG, filename="cat.png")
        self.assertTrue(mxc.startswith("test/"))
        channel = self.download(mxc)
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.result, PNG)
        self.assertEqual(channel.response.content_type, "image/png")  # type: ignore[union-attr]
        self.assertEqual(channel.header("Content-Disposition"), "inline; filename=cat.png")
        self.assertEqual(channel.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(channel.header("Cross-Origin-Resource-Policy"), "cross-origin")
        self.assertIn("sandbox", channel.header("Content-Security-Policy") or "")
        self.assertEqual(channel.header("Accept-Ranges"), "bytes")

    def test_download_is_streamed(self) -> None:
        """Downloads are streamed from the store's file, not buffered in the response."""
        mxc = self.upload_ok(b"x" * 300_000, content_type="application/octet-stream")
        channel = self.download(mxc)
        assert channel.response is not None
        self.assertEqual(channel.response.body, b"")
        assert channel.response.stream is not None
        self.assertEqual(channel.response.stream.length, 300_000)

    def test_missing_content_type_defaults_to_octet_stream(self) -> None:
        """An upload without Content-Type is stored as application/octet-stream and served
        as an attachment."""
        mxc = self.upload_ok(b"data", content_type=None)
        channel = self.download(mxc)
        self.assertEqual(channel.response.content_type,  # type: ignore[union-attr]
                         "application/octet-stream")
        self.assertEqual(channel.header("Content-Disposition"), "attachment")

    def test_unsafe_types_are_attachments(self) -> None:
        """HTML and SVG are never served inline, so they cannot run in our origin."""
        for content_type in ("text/html", "image/svg+xml"):
            mxc = self.upload_ok(b"<svg/>", content_type=content_type, filename="a.svg")
            self.assertEqual(self.download(mxc).header("Content-Disposition"),
                             "attachment; filename=a.svg")

    def test_unicode_file_name_is_rfc5987_encoded(self) -> None:
        """A non-ASCII file name goes in `filename*=utf-8''` percent-encoded."""
        mxc = self.upload_ok(PNG, filename="chat noir é.png")
        self.assertEqual(self.download(mxc).header("Content-Disposition"),
                         "inline; filename*=utf-8''chat%20noir%20%C3%A9.png")

    def test_download_with_file_name_overrides_name(self) -> None:
        """`/download/{server}/{id}/{fileName}` serves the file under the given name."""
        mxc = self.upload_ok(PNG, filename="cat.png")
        channel = self.download(mxc, "/other.png")
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.header("Content-Disposition"), "inline; filename=other.png")

    def test_empty_upload_is_accepted(self) -> None:
        """A zero-length upload is stored (as Synapse) and downloads as an empty body."""
        mxc = self.upload_ok(b"", content_type="text/plain")
        channel = self.download(mxc)
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.result, b"")

    def test_range_request(self) -> None:
        """`Range: bytes=` gives 206 with Content-Range; an unsatisfiable one 416."""
        data = bytes(range(256)) * 4
        mxc = self.upload_ok(data, content_type="application/octet-stream")
        channel = self.download(mxc, headers={"Range": "bytes=10-19"})
        self.assertEqual(channel.code, 206)
        self.assertEqual(channel.result, data[10:20])
        self.assertEqual(channel.header("Content-Range"), "bytes 10-19/1024")
        channel = self.download(mxc, headers={"Range": "bytes=-4"})
        self.assertEqual(channel.result, data[-4:])
        channel = self.download(mxc, headers={"Range": "bytes=5000-"})
        self.assertEqual(channel.code, 416)
        self.assertEqual(channel.header("Content-Range"), "bytes */1024")

    def test_identical_uploads_share_one_file(self) -> None:
        """Two uploads of the same content get two media IDs but one stored file."""
        a = self.upload_ok(PNG)
        b = self.upload_ok(PNG, token=self.bob_token)
        self.assertNotEqual(a, b)
        self.assertEqual(self.stored_files(), [hashlib.sha256(PNG).hexdigest()])
        self.assertEqual(self.download(b).result, PNG)

    def test_download_requires_auth(self) -> None:
        """The v1 client download endpoint needs an access token."""
        mxc = self.upload_ok(PNG)
        channel = self.make_request("GET", f"/_matrix/client/v1/media/download/{mxc}")
        self.assert_error(channel, 401, Codes.MISSING_TOKEN)

    def test_upload_requires_auth(self) -> None:
        """Uploading needs an access token."""
        channel = self.make_request("POST", "/_matrix/media/v3/upload", b"x")
        self.assert_error(channel, 401, Codes.MISSING_TOKEN)

    def test_config(self) -> None:
        """`/media/config` reports `m.upload.size` on the v1 and deprecated v3 paths."""
        for path in ("/_matrix/client/v1/media/config", "/_matrix/media/v3/config"):
            channel = self.make_request("GET", path, access_token=self.token)
            self.assertEqual(channel.code, 200)
            self.assertEqual(channel.json_body, {"m.upload.size": 50 * 1024 * 1024})

    # -- refusals --

    @override_config({"max_upload_size": 1000})
    def test_too_large_upload(self) -> None:
        """Past `max_upload_size` the upload is refused with 413 M_TOO_LARGE and nothing
        is left in the store."""
        channel = self.upload(b"x" * 1001)
        self.assert_error(channel, 413, Codes.TOO_LARGE)
        self.assertEqual(self.stored_files(), [])
        self.assertEqual(os.listdir(os.path.join(self.config.media_store_path, "tmp")), [])
        self.assertEqual(self.upload(b"x" * 1000).code, 200)

    @override_config({"media_upload_limits": [{"time_period": "1d", "max_size": 150}]})
    def test_upload_quota(self) -> None:
        """`media_upload_limits` caps what one user uploads per period; others unaffected;
        the quota frees up once the period has passed."""
        self.upload_ok(b"a" * 100)
        self.assert_error(self.upload(b"b" * 100), 413, Codes.TOO_LARGE)
        self.upload_ok(b"c" * 100, token=self.bob_token)
        self.reactor.advance(86_401)
        self.upload_ok(b"d" * 100)

    def test_bad_media_addresses(self) -> None:
        """Impossible server names or media IDs are 404 M_NOT_FOUND, never a 500."""
        for bad in ("test/..%2F..%2Fetc", "test/a%00b", "bad%20server/abc", "test/%2E%2E",
                    "test/unknownmedia"):
            channel = self.download(bad)
            self.assert_error(channel, 404, Codes.NOT_FOUND)

    def test_bad_upload_metadata(self) -> None:
        """A Content-Type or file name with control characters is refused with 400."""
        self.assertEqual(self.upload(b"x", content_type="text/plain\x01").code, 400)
        self.assertEqual(self.upload(b"x", filename="a\nb").code, 400)
        channel = self.make_request("POST", "/_matrix/media/v3/upload", b"x",
                                    access_token=self.token,
                                    headers={"Content-Length": "abc"})
        self.assertEqual(channel.code, 400)

    def test_quarantined_media_is_not_served(self) -> None:
        """Quarantined media is 404 until the flag is lifted."""
        mxc = self.upload_ok(PNG)
        server, media_id = mxc.split("/")
        repo = self.hs.get_media_repository()
        self.get_success(repo.quarantine(server, media_id, "@admin:test"))
        self.assert_error(self.download(mxc), 404, Codes.NOT_FOUND)
        self.get_success(repo.quarantine(server, media_id, None))
        self.assertEqual(self.download(mxc).code, 200)

    # -- authenticated media --

    def test_legacy_download_refuses_authenticated_media(self) -> None:
        """With `enable_authenticated_media` (the default) media uploaded is not served by
        the deprecated unauthenticated /_matrix/media/v3/download."""
        mxc = self.upload_ok(PNG)
        channel = self.make_request("GET", f"/_matrix/media/v3/download/{mxc}")
        self.assert_error(channel, 404, Codes.NOT_FOUND)

    @override_config({"enable_authenticated_media": False})
    def test_legacy_download_without_authenticated_media(self) -> None:
        """With `enable_authenticated_media: false` the v3 download serves without a token."""
        mxc = self.upload_ok(PNG)
        channel = self.make_request("GET", f"/_matrix/media/v3/download/{mxc}")
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.result, PNG)

    # -- async uploads --

    def create(self, token: str | None = None) -> FakeChannel:
        return self.make_request("POST", "/_matrix/media/v1/create",
                                 access_token=token or self.token)

    def put(self, mxc: str, data: bytes, token: str | None = None) -> FakeChannel:
        return self.make_request("PUT", f"/_matrix/media/v3/upload/{mxc}", data,
                                 access_token=token or self.token,
                                 headers={"Content-Type": "text/plain"})

    def test_async_upload(self) -> None:
        """`/create` reserves an ID expiring in 24 h; the creator's PUT fills it once;
        then it downloads."""
        channel = self.create()
        self.assertEqual(channel.code, 200)
        now_ms = int(self.reactor.seconds() * 1000)
        self.assertEqual(channel.json_body["unused_expires_at"], now_ms + 86_400_000)
        mxc = channel.json_body["content_uri"].removeprefix("mxc://")
        self.assert_error(self.put(mxc, b"hi", token=self.bob_token), 403, Codes.FORBIDDEN)
        self.assertEqual(self.put(mxc, b"hello").code, 200)
        self.assert_error(self.put(mxc, b"again"), 409, "M_CANNOT_OVERWRITE_MEDIA")
        channel = self.download(mxc)
        self.assertEqual(channel.result, b"hello")
        self.assertEqual(channel.response.content_type, "text/plain")  # type: ignore[union-attr]

    def test_pending_download_times_out(self) -> None:
        """A download of media not yet uploaded answers 504 M_NOT_YET_UPLOADED after
        `timeout_ms`."""
        mxc = self.create().json_body["content_uri"].removeprefix("mxc://")
        channel = self.make_request(
            "GET", f"/_matrix/client/v1/media/download/{mxc}?timeout_ms=1000",
            access_token=self.token, await_result=False)
        self.reactor.advance(1.1)
        self.pump()
        self.assert_error(channel, 504, "M_NOT_YET_UPLOADED")

    def test_pending_download_waits_for_upload(self) -> None:
        """A download waiting on pending media is answered once the upload arrives."""
        mxc = self.create().json_body["content_uri"].removeprefix("mxc://")
        channel = self.download_later(mxc)
        self.assertIsNone(channel.response)
        self.assertEqual(self.put(mxc, b"late").code, 200)
        self.reactor.advance(0.6)
        self.pump()
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.result, b"late")

    def download_later(self, mxc: str) -> FakeChannel:
        return self.make_request("GET", f"/_matrix/client/v1/media/download/{mxc}",
                                 access_token=self.token, await_result=False)

    @override_config({"max_pending_media_uploads": 2})
    def test_pending_uploads_are_limited(self) -> None:
        """Past `max_pending_media_uploads` unused IDs, `/create` answers 429 with the time
        until the first one expires."""
        self.create()
        self.reactor.advance(10)
        self.create()
        channel = self.create()
        self.assert_error(channel, 429, Codes.LIMIT_EXCEEDED)
        self.assertEqual(channel.json_body["retry_after_ms"], 86_400_000 - 10_000)
        self.assertEqual(self.create(token=self.bob_token).code, 200)

    def test_expired_media_id_cannot_be_uploaded(self) -> None:
        """After `unused_expiration_time` the reserved ID is gone: PUT gives 404."""
        mxc = self.create().json_body["content_uri"].removeprefix("mxc://")
        self.reactor.advance(86_400 + 1)
        self.assert_error(self.put(mxc, b"late"), 404, Codes.NOT_FOUND)

    def test_put_to_unknown_or_remote_id(self) -> None:
        """PUT to an ID never created, or on another server, is 404."""
        self.assert_error(self.put("test/nosuchid", b"x"), 404, Codes.NOT_FOUND)
        self.assert_error(self.put("other.example/abc", b"x"), 404, Codes.NOT_FOUND)

    # -- retention --

    @override_config({"media_retention": {"local_media_lifetime": "30d"}})
    def test_retention_deletes_unused_media(self) -> None:
        """The hourly job deletes local media not accessed within `local_media_lifetime`
        and its file once no upload refers to it; recently read media stays."""
        old = self.upload_ok(b"old data")
        kept = self.upload_ok(PNG)
        self.hs.get_media_retention().start()
        self.reactor.advance(20 * 86_400)
        self.assertEqual(self.download(kept).code, 200)
        self.reactor.advance(11 * 86_400)
        self.pump()
        self.assert_error(self.download(old), 404, Codes.NOT_FOUND)
        self.assertEqual(self.download(kept).code, 200)
        self.assertEqual(self.stored_files(), [hashlib.sha256(PNG).hexdigest()])

    @override_config({"media_retention": {"local_media_lifetime": "30d"}})
    def test_retention_keeps_shared_content(self) -> None:
        """Expiring one upload keeps the stored file while another upload of the same
        content still refers to it."""
        old = self.upload_ok(PNG)
        self.reactor.advance(20 * 86_400)
        newer = self.upload_ok(PNG, token=self.bob_token)
        self.hs.get_media_retention().start()
        self.reactor.advance(11 * 86_400)
        self.pump()
        self.assert_error(self.download(old), 404, Codes.NOT_FOUND)
        self.assertEqual(self.download(newer).result, PNG)

    def test_retention_drops_expired_pending_ids(self) -> None:
        """The job removes reserved IDs that never got content, freeing the pending quota."""
        mxc = self.create().json_body["content_uri"].removeprefix("mxc://")
        self.hs.get_media_retention().start()
        self.reactor.advance(86_400 + 3600)
        self.pump()
        media_id = mxc.split("/")[1]
        row = self.get_success(self.hs.get_datastores().media.get_local_media(media_id))
        self.assertIsNone(row)
