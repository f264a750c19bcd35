"""URL previews (`GET /_matrix/client/v1/media/preview_url`): OpenGraph data of a page.

`og:*` meta tags win; `<title>` and `<meta name="description">` fill in for pages without
them. An `og:image` (or a URL that is itself an image) is downloaded into the media
repository and returned as an `mxc://` URI with `matrix:image:size`. Answers are cached in
`url_previews` for an hour. Off unless `url_preview_enabled`; the fetcher
(`handlers/url_fetcher.py`) applies the IP blacklist at connect time.
"""

from __future__ import annotations

import fnmatch
import html.parser
import json
import logging
import os
import re
import tempfile
import urllib.parse
from typing import TYPE_CHECKING, Any

from federation.ip_filter import IPFilter
from handlers.url_fetcher import FetchError, UrlFetcher, getaddrinfo_in_thread
from homeserver.config import UrlBlacklistRule
from homeserver.errors import BadRequestError, Codes, ForbiddenError, MatrixError, NotFoundError

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

CACHE_LIFETIME_MS = 3_600_000
_MAX_TEXT = 500


class _OpenGraphParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og: dict[str, str] = {}
        self.title: str | None = None
        self.description: str | None = None
        self._in_title = False
        self._title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v or "" for k, v in attrs}
        if tag == "meta":
            key = a.get("property") or a.get("name") or ""
            content = a.get("content")
            if content is None:
                return
            if key.startswith("og:") and key not in self.og:
                self.og[key] = content
            elif key.lower() == "description" and self.description is None:
                self.description = content
        elif tag == "title" and self.title is None:
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.title = "".join(self._title_parts).strip()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)


def _charset(content_type: str, body: bytes) -> str:
    m = re.search(r"charset=[\"']?([\w-]+)", content_type, re.I)
    if m:
        return m.group(1)
    mb = re.search(rb"<meta[^>]+charset=[\"']?([\w-]+)", body[:2048], re.I)
    return mb.group(1).decode("ascii") if mb else "utf-8"


def parse_html_preview(body: bytes, content_type: str) -> dict[str, str]:
    """The OpenGraph fields of an HTML page, with `<title>`/description as fallbacks."""
    charset = _charset(content_type, body)
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    parser = _OpenGraphParser()
    try:
        parser.feed(text)
        parser.close()
    except AssertionError:  # html.parser on some malformed markup
        pass
    og = {k: v[:_MAX_TEXT] for k, v in parser.og.items()}
    if "og:title" not in og and parser.title:
        og["og:title"] = parser.title[:_MAX_TEXT]
    if "og:description" not in og and parser.description:
        og["og:description"] = parser.description[:_MAX_TEXT]
    return og


def _matches(pattern: str, value: str) -> bool:
    if pattern.startswith("^"):
        return re.match(pattern, value) is not None
    return fnmatch.fnmatch(value, pattern)


def url_is_blacklisted(url: str, rules: tuple[UrlBlacklistRule, ...]) -> bool:
    """Synapse's `url_preview_url_blacklist`: every pattern of one entry matches."""
    parts = urllib.parse.urlsplit(url)
    values = {
        "scheme": parts.scheme, "netloc": parts.netloc, "path": parts.path, "params": "",
        "query": parts.query, "fragment": parts.fragment, "username": parts.username or "",
        "password": parts.password or "", "hostname": parts.hostname or "",
        "port": str(parts.port or ""),
    }
    return any(all(_matches(p, values[c]) for c, p in rule.patterns) for rule in rules)


class UrlPreviewHandler:
    def __init__(self, hs: HomeServer) -> None:
        config = hs.config.media_extras
        self._config = config
        self._store = hs.get_datastores().url_previews
        self._clock = hs.get_clock()
        self._run_in_thread = hs.run_in_thread
        self._sink = hs.get_completed_upload_sink()
        self._tmp_dir = os.path.join(hs.config.media_store_path, "url_previews")
        ip_filter = IPFilter(config.url_preview_ip_range_blacklist,
                             config.url_preview_ip_range_whitelist)
        self._fetcher = UrlFetcher(
            hs.get_reactor(), ip_filter,
            lambda host, port: getaddrinfo_in_thread(hs.run_in_thread, host, port))
        self.enabled = config.url_preview_enabled

    def _check_url(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequestError("Only http and https URLs can be previewed", Codes.UNKNOWN)
        if url_is_blacklisted(url, self._config.url_preview_url_blacklist):
            raise ForbiddenError("URL blocked by url pattern blacklist entry", Codes.UNKNOWN)

    # GET /_matrix/client/v1/media/preview_url
    async def preview(self, user_id: str, url: str) -> dict[str, Any]:
        """The OpenGraph object of `url` (cached).

        Raises:
            MatrixError: 404 when disabled, 403 for blacklisted URLs or addresses, 502 when
            the page cannot be fetched.
        """
        if not self.enabled:
            raise NotFoundError("URL previews are disabled", Codes.UNRECOGNIZED)
        self._check_url(url)
        now = self._clock.time_msec()
        cached = await self._store.get_preview(url, now)
        if cached is not None:
            return json.loads(cached)  # type: ignore[no-any-return]
        og = await self._fetch_preview(user_id, url)
        await self._store.store_preview(url, now, now + CACHE_LIFETIME_MS, json.dumps(og))
        return og

    async def _fetch(self, url: str) -> Any:
        try:
            return await self._fetcher.get(
                url, self._config.max_spider_size,
                ",".join(self._config.url_preview_accept_language), self._check_url)
        except FetchError as e:
            if e.blocked:
                raise ForbiddenError("IP address blocked by IP blacklist entry",
                                     Codes.UNKNOWN) from None
            logger.info("URL preview of %s failed: %s", url, e)
            raise MatrixError(502, Codes.UNKNOWN, f"Failed to fetch the URL: {e}") from None

    async def _fetch_preview(self, user_id: str, url: str) -> dict[str, Any]:
        result = await self._fetch(url)
        if not 200 <= result.code < 300:
            raise MatrixError(502, Codes.UNKNOWN, f"The URL answered {result.code}")
        content_type = result.headers.get("content-type", "application/octet-stream")
        base_type = content_type.split(";", 1)[0].strip().lower()
        og: dict[str, Any]
        if base_type.startswith("image/"):
            og = await self._store_image(user_id, result.url, base_type, result.body)
            og["og:url"] = result.url
            return og
        if base_type not in ("text/html", "application/xhtml+xml"):
            return {}
        og = dict(parse_html_preview(result.body, content_type))
        image = og.pop("og:image", None)
        if image:
            image_url = urllib.parse.urljoin(result.url, image)
            try:
                og.update(await self._fetch_image(user_id, image_url))
            except MatrixError as e:
                # A page is still worth previewing without its image.
                logger.info("URL preview image %s skipped: %s", image_url, e.msg)
        return og

    async def _fetch_image(self, user_id: str, url: str) -> dict[str, Any]:
        self._check_url(url)
        result = await self._fetch(url)
        base_type = result.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not 200 <= result.code < 300 or not base_type.startswith("image/"):
            raise MatrixError(502, Codes.UNKNOWN, "og:image is not an image")
        return await self._store_image(user_id, url, base_type, result.body)

    async def _store_image(self, user_id: str, url: str, content_type: str, data: bytes
                           ) -> dict[str, Any]:
        path = await self._run_in_thread(self._write_temp, data)
        filename = os.path.basename(urllib.parse.urlsplit(url).path) or None
        try:
            mxc = await self._sink.store_completed_upload(user_id, path, len(data), filename,
                                                         content_type)
        finally:
            await self._run_in_thread(_unlink_quietly, path)
        og: dict[str, Any] = {"og:image": mxc, "og:image:type": content_type,
                              "matrix:image:size": len(data)}
        size = await self._run_in_thread(_image_size, data)
        if size is not None:
            og["og:image:width"], og["og:image:height"] = size
        return og

    def _write_temp(self, data: bytes) -> str:
        os.makedirs(self._tmp_dir, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=self._tmp_dir)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    async def expire_cache(self) -> None:
        await self._store.delete_expired(self._clock.time_msec())


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _image_size(data: bytes) -> tuple[int, int] | None:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except Exception:  # noqa: BLE001 - any undecodable image simply has no size
        return None
