"""Thumbnails with Pillow: sizes, EXIF, animation, bombs, broken files, and the choice."""

from __future__ import annotations

import io
import unittest

from PIL import Image

from handlers.thumbnailer import (
    ThumbnailError,
    ThumbnailInfo,
    generate_thumbnails,
    select_thumbnail,
)
from homeserver.config import DEFAULT_THUMBNAIL_SIZES, ThumbnailSize

MAX_PIXELS = 32 * 1024 * 1024


def image_bytes(size: tuple[int, int], fmt: str, color: str = "red", **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt, **save)
    return out.getvalue()


def open_image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


class ThumbnailerTestCase(unittest.TestCase):
    def test_default_sizes(self) -> None:
        """A PNG gets the five default sizes: crops exact, scales within the box with the
        source's aspect ratio."""
        thumbs = generate_thumbnails(image_bytes((1000, 500), "PNG"), "image/png",
                                     DEFAULT_THUMBNAIL_SIZES, MAX_PIXELS)
        got = [(t.method, t.width, t.height, t.content_type) for t in thumbs]
        self.assertEqual(got, [
            ("crop", 32, 32, "image/png"), ("crop", 96, 96, "image/png"),
            ("scale", 320, 160, "image/png"), ("scale", 640, 320, "image/png"),
            ("scale", 800, 400, "image/png"),
        ])
        self.assertEqual(open_image(thumbs[2].data).size, (320, 160))

    def test_scale_never_enlarges(self) -> None:
        """A source smaller than the box keeps its size when scaled."""
        thumbs = generate_thumbnails(image_bytes((100, 50), "JPEG"), "image/jpeg",
                                     [ThumbnailSize(640, 480, "scale")], MAX_PIXELS)
        self.assertEqual((thumbs[0].width, thumbs[0].height), (100, 50))
        self.assertEqual(thumbs[0].content_type, "image/jpeg")

    def test_exif_orientation_applied_and_stripped(self) -> None:
        """A JPEG with orientation 6 (rotated 90°) is thumbnailed upright; no EXIF is kept."""
        exif = Image.Exif()
        exif[0x0112] = 6
        exif[0x010F] = "SpyCam"  # Make
        data = image_bytes((400, 200), "JPEG", exif=exif.tobytes())
        thumbs = generate_thumbnails(data, "image/jpeg", [ThumbnailSize(800, 600, "scale")],
                                     MAX_PIXELS)
        image = open_image(thumbs[0].data)
        self.assertEqual(image.size, (200, 400))
        self.assertNotIn("exif", image.info)
        self.assertEqual(len(image.getexif()), 0)

    def test_animated_gif(self) -> None:
        """An animated GIF gets a still PNG and an animated GIF per size, frames kept."""
        frames = [Image.new("RGB", (200, 200), c) for c in ("red", "green", "blue")]
        out = io.BytesIO()
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100,
                       loop=0)
        thumbs = generate_thumbnails(out.getvalue(), "image/gif",
                                     [ThumbnailSize(96, 96, "crop")], MAX_PIXELS)
        self.assertEqual([(t.content_type, t.animated) for t in thumbs],
                         [("image/png", False), ("image/gif", True)])
        animated = open_image(thumbs[1].data)
        self.assertEqual(animated.size, (96, 96))
        self.assertEqual(animated.n_frames, 3)  # type: ignore[attr-defined]

    def test_decompression_bomb_refused(self) -> None:
        """An image above max_image_pixels is refused before it is decoded."""
        data = image_bytes((2000, 2000), "PNG")
        with self.assertRaises(ThumbnailError):
            generate_thumbnails(data, "image/png", DEFAULT_THUMBNAIL_SIZES, 1_000_000)

    def test_truncated_and_non_images_refused(self) -> None:
        """A truncated JPEG, a text file and an unsupported type raise ThumbnailError."""
        data = image_bytes((500, 500), "JPEG")
        for content, ctype in ((data[: len(data) // 3], "image/jpeg"),
                               (b"hello, world", "image/png"), (data, "text/plain")):
            with self.assertRaises(ThumbnailError):
                generate_thumbnails(content, ctype, DEFAULT_THUMBNAIL_SIZES, MAX_PIXELS)


def info(w: int, h: int, method: str, animated: bool = False) -> ThumbnailInfo:
    return ThumbnailInfo(w, h, method, "image/png", w * h, animated)


class SelectThumbnailTestCase(unittest.TestCase):
    STORED = [info(32, 32, "crop"), info(96, 96, "crop"), info(320, 240, "scale"),
              info(640, 480, "scale"), info(800, 600, "scale")]

    def test_choices(self) -> None:
        """The smallest thumbnail at least as large as asked, of the asked method."""
        cases = [((30, 30, "crop"), (32, 32)), ((50, 50, "crop"), (96, 96)),
                 ((300, 300, "crop"), (96, 96)), ((100, 100, "scale"), (320, 240)),
                 ((500, 400, "scale"), (640, 480)), ((2000, 2000, "scale"), (800, 600))]
        for (w, h, m), want in cases:
            got = select_thumbnail(self.STORED, w, h, m)
            assert got is not None
            self.assertEqual((got.width, got.height), want, (w, h, m))

    def test_other_method_is_fallback(self) -> None:
        """With no thumbnail of the asked method, the other method's best one answers."""
        got = select_thumbnail(self.STORED[:2], 320, 240, "scale")
        assert got is not None
        self.assertEqual((got.width, got.height), (96, 96))
        self.assertIsNone(select_thumbnail([], 32, 32, "crop"))

    def test_animated_preferred_when_asked(self) -> None:
        """animated=true picks the animated twin of the best size, false the still one."""
        stored = [info(96, 96, "crop"), info(96, 96, "crop", animated=True)]
        self.assertTrue(select_thumbnail(stored, 96, 96, "crop", animated=True).animated)  # type: ignore[union-attr]
        self.assertFalse(select_thumbnail(stored, 96, 96, "crop").animated)  # type: ignore[union-attr]
