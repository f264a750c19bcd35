"""Resumable uploads (tus 1.0) under /_matrix/client/unstable/io.axon/upload/resumable."""

from __future__ import annotations

import base64
import os
import shutil
from typing import Any

from tests.harness import HomeserverTestCase, override_config

BASE = "/_matrix/client/unstable/io.axon/upload/resumable"
TUS = {"Tus-Resumable": "1.0.0"}


class FakeSink:
    """Keeps completed uploads' bytes; stands in for the media repository."""

    def __init__(self) -> None:
        self.stored: list[tuple[str, bytes, str | None, str | None]] = []

    async def store_completed_upload(self, user_id: str, path: str, length: int,
                                     filename: str | None, content_type: str | None) -> str:
        with open(path, "rb") as f:
            data = f.read()
        assert len(data) == length
        self.stored.append((user_id, data, filename, content_type))
        return f"mxc://test/upload{len(self.stored)}"

    async def check_upload_allowed(self, user_id: str, length: int) -> None:
        pass


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class TusTestBase(HomeserverTestCase):
    """Helpers: a user, a fake media sink, and one method per tus request."""

    def prepare(self, reactor: Any, hs: Any) -> None:
        self.sink = FakeSink()
        handler = hs.get_resumable_upload_handler()
        handler._sink = self.sink
        self.user = self.register_user("alice")
        self.token = self.login("alice")

    def create(self, length: int, token: str | None = None, metadata: str | None = None
               ) -> Any:
        headers = {**TUS, "Upload-Length": str(length)}
        if metadata is not None:
            headers["Upload-Metadata"] = metadata
        return self.make_request("POST", BASE, access_token=token or self.token,
                                 headers=headers)

    def patch(self, location: str, offset: int, data: bytes, token: str | None = None,
              content_type: str = "application/offset+octet-stream") -> Any:
        return self.make_request("PATCH", location, data, access_token=token or self.token,
                                 headers={**TUS, "Upload-Offset": str(offset),
                                          "Content-Type": content_type})

    def head(self, location: str, token: str | None = None) -> Any:
        return self.make_request("HEAD", location, access_token=token or self.token,
                                 headers=TUS)

    def tearDown(self) -> None:
        shutil.rmtree(os.path.join(self.config.media_store_path, "resumable"),
                      ignore_errors=True)


class ResumableUploadTestCase(TusTestBase):
    def test_options_advertises_tus(self) -> None:
        """OPTIONS answers 204 with the version, the extensions and the maximum size."""
        channel = self.make_request("OPTIONS", BASE)
        self.assertEqual(channel.code, 204)
        self.assertEqual(channel.header("Tus-Version"), "1.0.0")
        self.assertEqual(channel.header("Tus-Extension"), "creation,expiration,termination")
        self.assertEqual(channel.header("Tus-Max-Size"), str(50 * 1024 * 1024))
        self.assertIn("Upload-Offset", channel.header("Access-Control-Expose-Headers") or "")

    def test_upload_in_two_chunks(self) -> None:
        """Create, PATCH twice, and the completed file goes to the media store with its
        metadata; the content URI is in the final PATCH and in a later HEAD."""
        channel = self.create(10, metadata=f"filename {b64('cat.txt')},filetype "
                                           f"{b64('text/plain')}")
        self.assertEqual(channel.code, 201, channel.result)
        location = channel.header("Location")
        assert location is not None and location.startswith(BASE + "/")
        self.assertIsNotNone(channel.header("Upload-Expires"))
        channel = self.patch(location, 0, b"hello")
        self.assertEqual(channel.code, 204, channel.result)
        self.assertEqual(channel.header("Upload-Offset"), "5")
        self.assertIsNone(channel.header("Io-Axon-Content-Uri"))
        self.assertEqual(self.head(location).header("Upload-Offset"), "5")
        channel = self.patch(location, 5, b"world")
        self.assertEqual(channel.code, 204, channel.result)
        self.assertEqual(channel.header("Io-Axon-Content-Uri"), "mxc://test/upload1")
        self.assertEqual(self.sink.stored,
                         [(self.user, b"helloworld", "cat.txt", "text/plain")])
        channel = self.head(location)
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.header("Upload-Offset"), "10")
        self.assertEqual(channel.header("Io-Axon-Content-Uri"), "mxc://test/upload1")
        self.assertEqual(channel.header("Cache-Control"), "no-store")

    def test_offset_mismatch_is_409(self) -> None:
        """A PATCH at an offset other than the upload's is refused with 409, nothing written."""
        location = self.create(10).header("Location")
        self.assertEqual(self.patch(location, 0, b"abc").code, 204)
        channel = self.patch(location, 0, b"abc")
        self.assertEqual(channel.code, 409, channel.result)
        self.assertEqual(self.head(location).header("Upload-Offset"), "3")

    def test_interrupted_write_is_overwritten(self) -> None:
        """Bytes past the recorded offset (a cut-off PATCH) are replaced on resume."""
        location = self.create(6).header("Location")
        self.patch(location, 0, b"abc")
        upload_id = location.rsplit("/", 1)[1]
        path = os.path.join(self.config.media_store_path, "resumable", upload_id)
        with open(path, "ab") as f:
            f.write(b"GARBAGE")
        self.patch(location, 3, b"def")
        self.assertEqual(self.sink.stored[0][1], b"abcdef")

    def test_refusals(self) -> None:
        """Missing Tus-Resumable is 412, a wrong Content-Type 415, no Upload-Length 400,
        data past the length 413, no token 401."""
        channel = self.make_request("POST", BASE, access_token=self.token,
                                    headers={"Upload-Length": "5"})
        self.assertEqual(channel.code, 412)
        channel = self.make_request("POST", BASE, access_token=self.token, headers=TUS)
        self.assert_error(channel, 400, "M_MISSING_PARAM")
        channel = self.make_request("POST", BASE, access_token=self.token,
                                    headers={**TUS, "Upload-Length": "-1"})
        self.assert_error(channel, 400, "M_INVALID_PARAM")
        location = self.create(4).header("Location")
        self.assertEqual(self.patch(location, 0, b"ab", content_type="text/plain").code, 415)
        self.assert_error(self.patch(location, 0, b"abcdef"), 413, "M_TOO_LARGE")
        channel = self.make_request("HEAD", location, headers=TUS)
        self.assertEqual(channel.code, 401)
        channel = self.make_request("POST", BASE, access_token=self.token,
                                    headers={**TUS, "Upload-Length": "5",
                                             "Upload-Metadata": "filename !!notbase64"})
        self.assert_error(channel, 400, "M_INVALID_PARAM")

    @override_config({"max_upload_size": 100})
    def test_too_large_upload_is_413(self) -> None:
        """An Upload-Length above max_upload_size is refused at creation."""
        self.assert_error(self.create(101), 413, "M_TOO_LARGE")
        self.assertEqual(self.create(100).code, 201)

    def test_other_users_upload_is_unknown(self) -> None:
        """Another user cannot see, append to or delete an upload (404)."""
        location = self.create(4).header("Location")
        self.register_user("mallory")
        other = self.login("mallory")
        self.assert_error(self.head(location, token=other), 404, "M_NOT_FOUND")
        self.assert_error(self.patch(location, 0, b"ab", token=other), 404, "M_NOT_FOUND")
        channel = self.make_request("DELETE", location, access_token=other, headers=TUS)
        self.assert_error(channel, 404, "M_NOT_FOUND")

    def test_termination(self) -> None:
        """DELETE drops the upload and its file; later requests get 404."""
        location = self.create(4).header("Location")
        self.patch(location, 0, b"ab")
        upload_id = location.rsplit("/", 1)[1]
        path = os.path.join(self.config.media_store_path, "resumable", upload_id)
        self.assertTrue(os.path.exists(path))
        channel = self.make_request("DELETE", location, access_token=self.token, headers=TUS)
        self.assertEqual(channel.code, 204)
        self.assertFalse(os.path.exists(path))
        self.assert_error(self.head(location), 404, "M_NOT_FOUND")

    @override_config({"resumable_upload_lifetime": "1h"})
    def test_incomplete_uploads_expire(self) -> None:
        """The background job drops uploads an hour after their last PATCH, with the file."""
        location = self.create(4).header("Location")
        upload_id = location.rsplit("/", 1)[1]
        path = os.path.join(self.config.media_store_path, "resumable", upload_id)
        self.reactor.advance(1800)
        self.patch(location, 0, b"ab")  # moves the expiry on
        self.reactor.advance(1800)
        self.assertEqual(self.head(location).code, 200)
        self.reactor.advance(1900)
        self.assertEqual(self.head(location).code, 404)
        self.assertFalse(os.path.exists(path))

    def test_empty_upload_completes_at_creation(self) -> None:
        """Upload-Length 0 completes at once: the POST answer carries the content URI."""
        channel = self.create(0)
        self.assertEqual(channel.code, 201)
        self.assertEqual(channel.header("Io-Axon-Content-Uri"), "mxc://test/upload1")


class ResumableUploadToRepositoryTestCase(HomeserverTestCase):
    @override_config({"media_upload_limits": [{"time_period": "1d", "max_size": 100}]})
    def test_quota_refused_at_creation(self) -> None:
        """An upload that would pass the user's media quota is refused at creation (413)."""
        self.register_user("alice")
        token = self.login("alice")
        channel = self.make_request("POST", BASE, access_token=token,
                                    headers={**TUS, "Upload-Length": "101"})
        self.assert_error(channel, 413, "M_TOO_LARGE")
        channel = self.make_request("POST", BASE, access_token=token,
                                    headers={**TUS, "Upload-Length": "100"})
        self.assertEqual(channel.code, 201)

    def test_completed_upload_is_downloadable(self) -> None:
        """A finished upload is stored by the media repository and downloads with its
        content type and file name."""
        self.register_user("alice")
        token = self.login("alice")
        channel = self.make_request(
            "POST", BASE, access_token=token,
            headers={**TUS, "Upload-Length": "6",
                     "Upload-Metadata": f"filename {b64('a.txt')},filetype {b64('text/plain')}"})
        location = channel.header("Location")
        channel = self.make_request("PATCH", location, b"abcdef", access_token=token,
                                    headers={**TUS, "Upload-Offset": "0",
                                             "Content-Type": "application/offset+octet-stream"})
        uri = channel.header("Io-Axon-Content-Uri")
        assert uri is not None and uri.startswith("mxc://test/")
        channel = self.make_request(
            "GET", f"/_matrix/client/v1/media/download/test/{uri.rsplit('/', 1)[1]}",
            access_token=token)
        self.assertEqual(channel.code, 200)
        assert channel.response is not None
        body = channel.response.stream.read_all() if channel.response.stream else channel.result
        self.assertEqual(body, b"abcdef")
        self.assertEqual(channel.response.content_type, "text/plain")


def _openapi() -> dict[str, Any]:
    import pathlib

    import yaml

    path = pathlib.Path(__file__).resolve().parents[2] / "docs" / "api" / "io.axon.yaml"
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


class ResumableUploadSpecTestCase(TusTestBase):
    """The server's tus answers match docs/api/io.axon.yaml (status, headers, error body)."""

    def check(self, path: str, method: str, channel: Any) -> None:
        import re

        doc = _openapi()
        operation = doc["paths"][path][method.lower()]
        responses = operation["responses"]
        self.assertIn(str(channel.code), responses, (method, path, channel.code))
        response = _resolve(doc, responses[str(channel.code)])
        for name, spec in response.get("headers", {}).items():
            spec = _resolve(doc, spec)
            value = channel.header(name)
            if value is None:
                self.assertFalse(spec.get("required"), f"{method} {path}: {name} missing")
                continue
            schema = spec["schema"]
            if "const" in schema:
                self.assertEqual(value, schema["const"], name)
            if "pattern" in schema:
                self.assertRegex(value, re.compile(schema["pattern"]), name)
        content = response.get("content", {}).get("application/json")
        if content is not None:
            schema = _resolve(doc, content["schema"])
            for key in schema["required"]:
                self.assertIsInstance(channel.json_body[key], str)

    def test_answers_match_openapi(self) -> None:
        """OPTIONS, POST, HEAD, PATCH (ok, 409, 415), DELETE and errors as documented."""
        base = "/_matrix/client/unstable/io.axon/upload/resumable"
        one = base + "/{uploadId}"
        self.check(base, "OPTIONS", self.make_request("OPTIONS", BASE))
        created = self.create(4)
        self.check(base, "POST", created)
        self.check(base, "POST", self.create(10**12))  # 413
        location = created.header("Location")
        self.check(one, "HEAD", self.head(location))
        self.check(one, "PATCH", self.patch(location, 0, b"ab"))
        self.check(one, "PATCH", self.patch(location, 0, b"ab"))  # 409
        self.check(one, "PATCH", self.patch(location, 2, b"cd", content_type="text/plain"))
        done = self.patch(location, 2, b"cd")
        self.check(one, "PATCH", done)
        self.assertIsNotNone(done.header("Io-Axon-Content-Uri"))
        self.check(one, "HEAD", self.head(location))
        other = self.create(1).header("Location")
        self.check(one, "DELETE", self.make_request("DELETE", other, access_token=self.token,
                                                   headers=TUS))
