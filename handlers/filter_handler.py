"""Uploaded sync filters: create, read, and resolve the `filter` parameter of /sync."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from handlers.filtering import FilterCollection
from homeserver.errors import Codes, MatrixError
from homeserver.json_decode import JsonDecodeError, decode_json

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: filter IDs are per-user counters; anything longer is not one of ours
_MAX_ID_DIGITS = 18


def _not_found() -> MatrixError:
    return MatrixError(404, Codes.NOT_FOUND, "No such filter")


def _parse_filter_id(filter_id: str) -> int:
    # Non-numeric IDs are "no such filter" (404), never a 400: one answer for every
    # ID we did not hand out.
    if not filter_id.isascii() or not filter_id.isdigit() or len(filter_id) > _MAX_ID_DIGITS:
        raise _not_found()
    return int(filter_id)


class FilterHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._store = hs.get_datastores().filters

    # POST /_matrix/client/v3/user/{userId}/filter
    async def create_filter(self, user_id: str, obj: Any) -> str:
        """Validate and store a filter; returns its ID.

        Raises:
            MatrixError: 400 M_BAD_JSON for an invalid filter.
        """
        FilterCollection.parse(obj)
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return str(await self._store.add_filter(user_id, text))

    # GET /_matrix/client/v3/user/{userId}/filter/{filterId}
    async def get_filter_json(self, user_id: str, filter_id: str) -> dict[str, Any]:
        """The filter as uploaded.

        Raises:
            MatrixError: 404 M_NOT_FOUND for an ID the user has no filter under.
        """
        text = await self._store.get_filter(user_id, _parse_filter_id(filter_id))
        if text is None:
            raise _not_found()
        value: dict[str, Any] = json.loads(text)
        return value

    async def get_filter(self, user_id: str, filter_id: str) -> FilterCollection:
        """The parsed filter (raises 404 M_NOT_FOUND as `get_filter_json`)."""
        return FilterCollection.parse(await self.get_filter_json(user_id, filter_id))

    async def resolve(self, user_id: str, param: str | None) -> FilterCollection:
        """The filter a /sync `filter` query parameter names: none → the default;
        starting with `{` → inline JSON; otherwise a filter ID of this user.

        Raises:
            MatrixError: 400 M_NOT_JSON for inline text that is not JSON, 400 M_BAD_JSON
                for an invalid filter, 404 M_NOT_FOUND for an unknown filter ID.
        """
        if param is None:
            return FilterCollection.default()
        if param.startswith("{"):
            try:
                obj = decode_json(param)
            except JsonDecodeError:
                raise MatrixError(400, Codes.NOT_JSON, "filter must be valid JSON") from None
            return FilterCollection.parse(obj)
        return await self.get_filter(user_id, param)
