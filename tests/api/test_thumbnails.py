"""Thumbnail endpoints: generated at upload, chosen per request, and the refusals."""

from __future__ import annotations

import io
from email import policy
from email.parser import BytesParser
from typing import Any

from PIL import Image

from tests.federation.fed_helpers import RemoteServer, signed_request
from tests.harness import FakeChannel, HomeserverTestCase, override_config


def image_bytes(size: tuple[int, int], fmt: str, **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "blue").save(out, fmt, **save)
    return out.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (120, 120), c) for c in ("red", "green")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def body_of(channel: FakeChannel) -> bytes:
    assert channel.response is not None
    stream = channel.response.stream
    return stream.read_all() if stream is not None else channel.result


class ThumbnailApiTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.register_user("alice")
        self.token = self.login("alice")

    def upload(self, data: bytes, content_type: str) -> str:
        channel = self.make_request("POST", "/_matrix/media/v3/upload", data,
                                    access_token=self.token,
                                    headers={"Content-Type": content_type})
        self.assertEqual(channel.code, 200, channel.result)
        return str(channel.json_body["content_uri"]).removeprefix("mxc://")

    def thumbnail(self, mxc: str, query: str, token: str | None = "") -> FakeChannel:
        return self.make_request(
            "GET", f"/_matrix/client/v1/media/thumbnail/{mxc}?{query}",
            access_token=self.token if token == "" else token)

    def test_generated_at_upload(self) -> None:
        """An image upload stores the five default thumbnails at once."""
        mxc = self.upload(image_bytes((1000, 800), "PNG"), "image/png")
        rows = self.get_success(
            self.hs.get_datastores().media_thumbnails.get_thumbnails(*mxc.split("/")))
        self.assertEqual(sorted((r.width, r.height, r.method) for r in rows), [
            (32, 32, "crop"), (96, 96, "crop"), (300, 240, "scale"), (600, 480, "scale"),
            (750, 600, "scale")])

    def test_crop_and_scale(self) -> None:
        """crop 40x40 answers the 96x96 crop; scale 500x500 the 640x480 box (as PNG)."""
        mxc = self.upload(image_bytes((1000, 800), "PNG"), "image/png")
        channel = self.thumbnail(mxc, "width=40&height=40&method=crop")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.response.content_type, "image/png")  # type: ignore[union-attr]
        self.assertEqual(Image.open(io.BytesIO(body_of(channel))).size, (96, 96))
        channel = self.thumbnail(mxc, "width=500&height=500&method=scale")
        self.assertEqual(Image.open(io.BytesIO(body_of(channel))).size, (600, 480))

    def test_exif_rotated_jpeg(self) -> None:
        """A JPEG with EXIF orientation 8 is thumbnailed upright, as JPEG, without EXIF."""
        exif = Image.Exif()
        exif[0x0112] = 8
        mxc = self.upload(image_bytes((800, 400), "JPEG", exif=exif.tobytes()), "image/jpeg")
        channel = self.thumbnail(mxc, "width=800&height=600&method=scale")
        image = Image.open(io.BytesIO(body_of(channel)))
        self.assertEqual((image.format, image.size), ("JPEG", (300, 600)))
        self.assertEqual(len(image.getexif()), 0)

    def test_animated(self) -> None:
        """animated=true returns an animated GIF of a GIF; without it, a still PNG."""
        mxc = self.upload(animated_gif(), "image/gif")
        channel = self.thumbnail(mxc, "width=96&height=96&method=crop&animated=true")
        self.assertEqual(channel.response.content_type, "image/gif")  # type: ignore[union-attr]
        self.assertEqual(Image.open(io.BytesIO(body_of(channel))).n_frames, 2)  # type: ignore[attr-defined]
        channel = self.thumbnail(mxc, "width=96&height=96&method=crop")
        self.assertEqual(channel.response.content_type, "image/png")  # type: ignore[union-attr]

    @override_config({"max_image_pixels": 10_000})
    def test_refusals(self) -> None:
        """Non-images, truncated images and images past max_image_pixels give 400
        M_UNKNOWN; bad parameters 400; no token 401; unknown media 404."""
        text = self.upload(b"hello", "text/plain")
        jpeg = image_bytes((90, 90), "JPEG")
        truncated = self.upload(jpeg[: len(jpeg) // 2], "image/jpeg")
        bomb = self.upload(image_bytes((500, 500), "PNG"), "image/png")
        for mxc in (text, truncated, bomb):
            self.assert_error(self.thumbnail(mxc, "width=32&height=32"), 400, "M_UNKNOWN")
        ok = self.upload(image_bytes((90, 90), "PNG"), "image/png")
        self.assertEqual(self.thumbnail(ok, "width=32&height=32").code, 200)
        self.assert_error(self.thumbnail(ok, "height=32"), 400, "M_MISSING_PARAM")
        self.assert_error(self.thumbnail(ok, "width=32&height=32&method=zoom"), 400,
                          "M_INVALID_PARAM")
        self.assertEqual(self.thumbnail(ok, "width=32&height=32", token=None).code, 401)
        self.assert_error(self.thumbnail("test/nosuchmedia", "width=32&height=32"), 404,
                          "M_NOT_FOUND")

    def test_legacy_endpoint_follows_authenticated_media(self) -> None:
        """The deprecated /_matrix/media/v3/thumbnail does not serve authenticated media."""
        mxc = self.upload(image_bytes((100, 100), "PNG"), "image/png")
        channel = self.make_request("GET", f"/_matrix/media/v3/thumbnail/{mxc}?width=32"
                                           "&height=32")
        self.assert_error(channel, 404, "M_NOT_FOUND")

    @override_config({"enable_authenticated_media": False})
    def test_legacy_endpoint_without_authenticated_media(self) -> None:
        """With enable_authenticated_media off the deprecated endpoint serves thumbnails."""
        mxc = self.upload(image_bytes((100, 100), "PNG"), "image/png")
        channel = self.make_request("GET", f"/_matrix/media/v3/thumbnail/{mxc}?width=32"
                                           "&height=32")
        self.assertEqual(channel.code, 200, channel.result)

    def test_federation_thumbnail_is_multipart(self) -> None:
        """Over federation the thumbnail comes as multipart/mixed: JSON, then the image."""
        mxc = self.upload(image_bytes((400, 400), "PNG"), "image/png")
        media_id = mxc.split("/")[1]
        channel = signed_request(self, RemoteServer("remote.example"), "GET",
                                 f"/_matrix/federation/v1/media/thumbnail/{media_id}"
                                 "?width=96&height=96&method=crop")
        self.assertEqual(channel.code, 200, channel.result)
        content_type = channel.response.content_type  # type: ignore[union-attr]
        self.assertTrue(content_type.startswith("multipart/mixed"))
        message = BytesParser(policy=policy.default).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body_of(channel))
        parts = list(message.iter_parts())  # type: ignore[attr-defined]
        self.assertEqual(parts[0].get_content_type(), "application/json")
        image = Image.open(io.BytesIO(parts[1].get_payload(decode=True)))
        self.assertEqual(image.size, (96, 96))


class RemoteThumbnailTestCase(HomeserverTestCase):
    def test_remote_media_thumbnailed_locally(self) -> None:
        """A remote image is fetched over federation once, then thumbnailed here: the
        thumbnail request does not ask the origin for a thumbnail."""
        from tests.federation.test_media_federation import FakeOrigin

        self.register_user("bob")
        token = self.login("bob")
        origin = FakeOrigin()
        self.hs.get_remote_media_fetcher()._federation = origin
        origin.files["pic"] = ("image/png", image_bytes((300, 200), "PNG"), None)
        channel = self.make_request(
            "GET", "/_matrix/client/v1/media/thumbnail/remote.example/pic?width=32&height=32"
                   "&method=crop", access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(Image.open(io.BytesIO(body_of(channel))).size, (32, 32))
        self.assertEqual(origin.calls, ["/_matrix/federation/v1/media/download/pic"])
        rows = self.get_success(self.hs.get_datastores().media_thumbnails.get_thumbnails(
            "remote.example", "pic"))
        # the three scale sizes are all the 300x200 original size: stored once
        self.assertEqual(sorted((r.width, r.height, r.method) for r in rows),
                         [(32, 32, "crop"), (96, 96, "crop"), (300, 200, "scale")])
