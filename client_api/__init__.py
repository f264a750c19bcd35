"""Client-server API servlets (and, through `register_all_servlets`, every other surface)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from homeserver.server import HomeServer
    from rest.http import Router

# Every module here ends with `register_servlets(hs, router)`; add new ones to this list.
SERVLET_MODULES = (
    "client_api.login",
    "client_api.account",
    "client_api.register",
    "rest.admin.register",
    "rest.admin.registration_tokens",
    "client_api.logout",
    "client_api.devices",
    "client_api.profile",
    "client_api.user_directory",
    "client_api.versions",
    "rest.well_known",
    "rest.key_server",
    "rest.key_query",
    "rest.federation_version",
    "client_api.room",
    "client_api.room_reads",
    "client_api.membership",
    "client_api.directory",
    "client_api.room_upgrade",
    "client_api.sync",
    "federation.transport.send",
    "federation.transport.public_rooms",
    "federation.transport.rooms_read",
    "federation.transport.queries",
    "federation.transport.membership",
    "client_api.presence",
    "client_api.to_device",
    "client_api.keys",
    "client_api.room_keys",
    "client_api.filter",
    "client_api.messages",
    "client_api.search",
    "client_api.account_data",
    "client_api.receipts",
    "client_api.push_rules",
    "client_api.openid",
    "client_api.space_hierarchy",
    "client_api.relations",
    "client_api.reporting",
    "client_api.mutual_rooms",
    "client_api.room_summary",
    "client_api.events_legacy",
    "client_api.timestamp_to_event",
    "federation.transport.timestamp_to_event",
    "federation.transport.user_queries",
    "federation.transport.hierarchy",
    "rest.media.servlets",
    "rest.media.federation",
    "rest.media.thumbnails",
    "client_api.resumable_upload",
    "client_api.url_preview",
)


def register_all_servlets(hs: HomeServer, router: Router) -> None:
    for name in SERVLET_MODULES:
        importlib.import_module(name).register_servlets(hs, router)
