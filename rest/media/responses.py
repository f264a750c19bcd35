"""Shaping media responses: the safety headers, `Content-Disposition`, byte ranges, and the
`multipart/mixed` body of the federation media endpoints."""

from __future__ import annotations

import json
import re
import secrets
import urllib.parse
from typing import Any

from rest.http import FileRange, HttpRequest, HttpResponse, StreamedBody

#: types a browser may render in place (as Synapse); anything else is an attachment, so
#: an uploaded HTML or SVG page cannot run in the server's origin
INLINE_CONTENT_TYPES = frozenset({
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
    "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime", "audio/mp4", "audio/webm",
    "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave", "audio/wav", "audio/x-wav",
    "audio/x-pn-wav", "audio/flac", "audio/x-flac",
})

SECURITY_HEADERS = (
    ("Content-Security-Policy",
     "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
     "style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"),
    ("Cross-Origin-Resource-Policy", "cross-origin"),
    ("X-Content-Type-Options", "nosniff"),
)

# RFC 2616 `token` characters: a file name made only of these needs no quoting.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def content_disposition(media_type: str, upload_name: str | None) -> str:
    """`inline` for safe types, else `attachment`, with the file name as RFC 6266 says:
    a plain `filename=` for token-safe ASCII, `filename*=utf-8''…` (RFC 5987) otherwise."""
    base = media_type.split(";", 1)[0].strip().lower()
    disposition = "inline" if base in INLINE_CONTENT_TYPES else "attachment"
    if not upload_name:
        return disposition
    if _TOKEN_RE.fullmatch(upload_name):
        return f"{disposition}; filename={upload_name}"
    return f"{disposition}; filename*=utf-8''{urllib.parse.quote(upload_name, safe='')}"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """A single `Range: bytes=` range as (start, length); None to send the whole file
    (no header, several ranges, or a form we do not serve); False if unsatisfiable."""
    if not header:
        return None
    m = _RANGE_RE.fullmatch(header.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            return False
        start = max(0, size - n)
        return start, size - start
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return False
    return start, end - start + 1


def media_response(request: HttpRequest, media_type: str, length: int, path: str,
                   upload_name: str | None) -> HttpResponse:
    """A download: the file streamed from disk with the safety headers; `Range` honoured."""
    headers = [("Content-Disposition", content_disposition(media_type, upload_name)),
               ("Accept-Ranges", "bytes"),
               ("Cache-Control", "public,max-age=86400,s-maxage=0,proxy-revalidate"),
               *SECURITY_HEADERS]
    wanted = parse_range(request.headers.get("range"), length)
    if wanted is False:
        headers.append(("Content-Range", f"bytes */{length}"))
        return HttpResponse(code=416, body=b"", headers=headers, content_type=media_type)
    if wanted is None or wanted is True:
        return HttpResponse(code=200, body=b"", headers=headers, content_type=media_type,
                            stream=StreamedBody((FileRange(path, 0, length),)))
    start, count = wanted
    headers.append(("Content-Range", f"bytes {start}-{start + count - 1}/{length}"))
    return HttpResponse(code=206, body=b"", headers=headers, content_type=media_type,
                        stream=StreamedBody((FileRange(path, start, count),)))


def multipart_response(metadata: dict[str, Any], media_type: str, length: int, path: str,
                       upload_name: str | None) -> HttpResponse:
    """The federation media answer: `multipart/mixed` with the JSON metadata part and the
    file part (served inline, never as a redirect). Reused by the thumbnail endpoint."""
    boundary = secrets.token_hex(16)
    head = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n"
        f"{json.dumps(metadata, separators=(',', ':'))}\r\n"
        f"--{boundary}\r\nContent-Type: {media_type}\r\n"
        f"Content-Disposition: {content_disposition(media_type, upload_name)}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    return HttpResponse(
        code=200, body=b"", headers=list(SECURITY_HEADERS),
        content_type=f"multipart/mixed; boundary={boundary}",
        stream=StreamedBody((head, FileRange(path, 0, length), tail)))
