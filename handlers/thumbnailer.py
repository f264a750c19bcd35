"""Thumbnails with Pillow: the `crop` and `scale` methods, and which stored thumbnail
answers a request (Synapse's choice rules).

Pure functions over bytes, no I/O: the media handler runs them on a thread. EXIF
orientation is applied and EXIF is not written back; images above `max_image_pixels`
(decompression bombs) and files Pillow cannot decode are refused with `ThumbnailError`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import attrs
from PIL import Image, ImageOps, ImageSequence

from homeserver.config import ThumbnailSize

#: source type → thumbnail type (Synapse's choice: JPEG stays JPEG, the rest become PNG)
THUMBNAIL_TYPES = {
    "image/jpeg": "image/jpeg",
    "image/jpg": "image/jpeg",
    "image/webp": "image/jpeg",
    "image/gif": "image/png",
    "image/png": "image/png",
}
#: animated thumbnails (MSC2705) keep the source's format
ANIMATED_TYPES = {"image/gif": "image/gif", "image/webp": "image/webp"}
_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF",
                "image/webp": "WEBP"}
#: an animation with more frames than this gets a still thumbnail (CPU bound)
MAX_ANIMATED_FRAMES = 200


class ThumbnailError(Exception):
    """The source cannot be thumbnailed (not an image, truncated, or too large)."""


@attrs.frozen(slots=True)
class Thumbnail:
    """A generated thumbnail: its real size, the method and size asked, and its bytes."""

    width: int
    height: int
    method: str
    content_type: str
    animated: bool
    data: bytes


def can_thumbnail(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in THUMBNAIL_TYPES


def _open(data: bytes | str, max_image_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ThumbnailError(f"not an image: {e}") from None
    if image.width * image.height > max_image_pixels:
        raise ThumbnailError("image is too large to thumbnail")
    return image


def _scaled_size(src_w: int, src_h: int, max_w: int, max_h: int) -> tuple[int, int]:
    """The largest size within (max_w, max_h) with the source's aspect ratio, never larger
    than the source."""
    if max_w * src_h < max_h * src_w:
        w, h = max_w, max(1, max_w * src_h // src_w)
    else:
        w, h = max(1, max_h * src_w // src_h), max_h
    return min(w, src_w), min(h, src_h)


def _resize(frame: Image.Image, spec: ThumbnailSize) -> Image.Image:
    if spec.method == "crop":
        return ImageOps.fit(frame, (spec.width, spec.height), Image.Resampling.LANCZOS)
    size = _scaled_size(frame.width, frame.height, spec.width, spec.height)
    return frame.resize(size, Image.Resampling.LANCZOS)


def _still(image: Image.Image, spec: ThumbnailSize, out_type: str) -> Thumbnail:
    frame = ImageOps.exif_transpose(image) or image
    if out_type == "image/jpeg":
        frame = frame.convert("RGB")
    elif frame.mode not in ("RGB", "RGBA", "L", "LA"):
        frame = frame.convert("RGBA")
    result = _resize(frame, spec)
    out = io.BytesIO()
    # No `exif=`: the thumbnail carries no EXIF (location, camera) from the source.
    result.save(out, _PIL_FORMATS[out_type], **({"quality": 80} if out_type == "image/jpeg"
                                                   else {}))
    return Thumbnail(result.width, result.height, spec.method, out_type, False,
                     out.getvalue())


def _animated(image: Image.Image, spec: ThumbnailSize, out_type: str) -> Thumbnail:
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        durations.append(int(frame.info.get("duration", 100)))
        frames.append(_resize(frame.convert("RGBA"), spec))
    out = io.BytesIO()
    frames[0].save(out, _PIL_FORMATS[out_type], save_all=True, append_images=frames[1:],
                   duration=durations, loop=int(image.info.get("loop", 0)), disposal=2)
    return Thumbnail(frames[0].width, frames[0].height, spec.method, out_type, True,
                     out.getvalue())


def generate_thumbnails(data: bytes | str, content_type: str, specs: Iterable[ThumbnailSize],
                        max_image_pixels: int) -> list[Thumbnail]:
    """Every configured thumbnail of an image (its bytes, or the path of its file, which
    is then read only as far as decoding needs); animated ones too for animated GIF/WebP.

    Raises:
        ThumbnailError: not a thumbnailable image, truncated, or above `max_image_pixels`.
    """
    base_type = content_type.split(";", 1)[0].strip().lower()
    if base_type not in THUMBNAIL_TYPES:
        raise ThumbnailError(f"cannot thumbnail {base_type!r}")
    image = _open(data, max_image_pixels)
    frames = int(getattr(image, "n_frames", 1))
    # Every frame is decoded: the pixel budget counts them all.
    animated = (base_type in ANIMATED_TYPES and getattr(image, "is_animated", False)
                and frames <= MAX_ANIMATED_FRAMES
                and image.width * image.height * frames <= max_image_pixels)
    thumbnails: list[Thumbnail] = []
    try:
        for spec in specs:
            thumbnails.append(_still(image, spec, THUMBNAIL_TYPES[base_type]))
            if animated:
                thumbnails.append(_animated(image, spec, ANIMATED_TYPES[base_type]))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ThumbnailError(f"cannot decode image: {e}") from None
    finally:
        image.close()
    return thumbnails


@attrs.frozen(slots=True)
class ThumbnailInfo:
    """A stored thumbnail, as far as choosing one needs."""

    width: int
    height: int
    method: str
    content_type: str
    length: int
    animated: bool = False


def select_thumbnail(candidates: Sequence[ThumbnailInfo], width: int, height: int,
                     method: str, animated: bool = False) -> ThumbnailInfo | None:
    """The stored thumbnail that best answers a request, as Synapse picks it.

    `crop` prefers a thumbnail at least as large as asked, then the closest aspect ratio,
    then the closest size; `scale` prefers one at least as large in one dimension, then the
    closest size. Candidates of the asked method win; the other method is the fallback.
    With `animated`, an animated thumbnail wins over a still one of the same quality.
    """
    if not candidates:
        return None

    def crop_key(t: ThumbnailInfo) -> tuple[int, ...]:
        smaller = int(t.width < width or t.height < height)
        aspect = abs(width * t.height - height * t.width)
        size = abs((width - t.width) * (height - t.height))
        return (smaller, aspect, size, int(t.animated != animated), t.length)

    def scale_key(t: ThumbnailInfo) -> tuple[int, ...]:
        smaller = int(t.width < width and t.height < height)
        size = abs((width - t.width) * (height - t.height))
        return (smaller, size, int(t.animated != animated), t.length)

    key = crop_key if method == "crop" else scale_key
    same = [t for t in candidates if t.method == method]
    pool = same or list(candidates)
    return min(pool, key=key)
