"""The `HomeServer` container: the one place where parts are built and wired.

Each `get_x()` builds its part on first use and caches it; a part takes `hs` and pulls
what it needs at the top of its `__init__`. A dependency cycle raises instead of recursing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet import threads

from homeserver.clock import Clock
from homeserver.config import HomeServerConfig

if TYPE_CHECKING:
    from federation.backfill import FederationBackfillHandler
    from federation.client import FederationClient
    from federation.device_queries import FederationDeviceQueryHandler
    from federation.event_handler import FederationEventHandler
    from federation.keyring import KeyRing
    from federation.membership import FederationMembershipHandler
    from federation.query_handler import FederationQueryHandler
    from federation.ratelimit import FederationRateLimiter
    from federation.sender import FederationSender
    from federation.server_visibility import ServerVisibility
    from federation.serving import FederationServingHandler
    from federation.transport.server import FederationAuth
    from handlers.account import AccountHandler
    from handlers.account_data import AccountDataHandler
    from handlers.admin_register import SharedSecretRegistrationHandler
    from handlers.audit_log import AuditLog
    from handlers.auth import AuthHandler
    from handlers.bulk_push import BulkPushRuleEvaluator
    from handlers.device_lists import DeviceListHandler
    from handlers.devices import DeviceHandler
    from handlers.directory import DirectoryHandler
    from handlers.e2e_cross_signing import CrossSigningHandler
    from handlers.e2e_keys import E2eKeysHandler
    from handlers.e2e_room_keys import E2eRoomKeysHandler
    from handlers.event_creation import EventCreationHandler
    from handlers.filter_handler import FilterHandler
    from handlers.legacy_sync import LegacySyncHandler
    from handlers.login import LoginHandler
    from handlers.media.remote import RemoteMediaFetcher
    from handlers.media.repository import MediaRepository
    from handlers.media.retention import MediaRetention
    from handlers.media.storage import MediaStorage
    from handlers.media_thumbnails import ThumbnailHandler
    from handlers.message import MessageHandler
    from handlers.mutual_rooms import MutualRoomsHandler
    from handlers.notifier import Notifier
    from handlers.openid import OpenIdHandler
    from handlers.pagination import PaginationHandler
    from handlers.passwords import PasswordHandler
    from handlers.presence import PresenceHandler
    from handlers.profile import ProfileHandler
    from handlers.push_rules import PushRulesHandler
    from handlers.ratelimit import Ratelimiters
    from handlers.receipts import ReceiptsHandler
    from handlers.registration import RegistrationHandler
    from handlers.relations import BundledAggregations, RelationsHandler
    from handlers.reporting import ReportingHandler
    from handlers.resumable_upload import CompletedUploadSink, ResumableUploadHandler
    from handlers.room import RoomCreationHandler
    from handlers.room_member import RoomMemberHandler
    from handlers.room_members_read import RoomMembersReadHandler
    from handlers.room_reads import RoomReadHandler
    from handlers.room_summary import RoomSummaryHandler
    from handlers.search import SearchHandler
    from handlers.space_hierarchy import SpaceHierarchyHandler
    from handlers.state import StateHandler
    from handlers.sync import SyncHandler
    from handlers.timestamp_lookup import TimestampLookupHandler
    from handlers.to_device import ToDeviceHandler
    from handlers.tokens import TokenHandler
    from handlers.typing import TypingHandler
    from handlers.ui_auth import UserInteractiveAuthHandler
    from handlers.url_preview import UrlPreviewHandler
    from handlers.user_directory import UserDirectoryHandler
    from handlers.visibility import VisibilityHandler
    from homeserver.keys import SigningKey
    from rest.auth import Auth
    from rest.http import Router
    from storage.database import DatabasePool
    from storage.datastores import DataStores

T = TypeVar("T")


def _part(builder: Callable[[HomeServer], T]) -> Callable[[HomeServer], T]:
    name = builder.__name__.removeprefix("get_")

    @functools.wraps(builder)
    def get(self: HomeServer) -> T:
        try:
            return self._parts[name]  # type: ignore[no-any-return]
        except KeyError:
            pass
        if name in self._building:
            raise RuntimeError(f"dependency cycle while building {name}: {self._building}")
        self._building.append(name)
        try:
            part = builder(self)
        finally:
            self._building.remove(name)
        self._parts[name] = part
        return part

    return get


class HomeServer:
    """Holds the config, reactor and every part of the server.

    Args:
        config: the parsed configuration.
        reactor: the Twisted reactor (a `MemoryReactorClock` in tests).
        db_pool: the database pool; built from the config if not given.
        run_threads_inline: run CPU-heavy work (bcrypt) inline instead of on a thread; for
            tests on an in-memory reactor.
    """

    def __init__(self, config: HomeServerConfig, reactor: Any,
                 db_pool: DatabasePool | None = None, run_threads_inline: bool = False) -> None:
        self.config = config
        self.reactor = reactor
        self.hostname = config.server_name
        self._parts: dict[str, Any] = {}
        self._building: list[str] = []
        self._run_threads_inline = run_threads_inline
        if db_pool is not None:
            self._parts["db_pool"] = db_pool
        self._shutdown_hooks: list[Callable[[], Any]] = []

    # -- lifecycle --

    def add_shutdown_hook(self, hook: Callable[[], Any]) -> None:
        self._shutdown_hooks.append(hook)

    def shutdown(self) -> None:
        """Stop background work and close the database (in reverse order of start)."""
        for hook in reversed(self._shutdown_hooks):
            hook()
        self._shutdown_hooks.clear()
        if "db_pool" in self._parts:
            self._parts["db_pool"].close()

    async def run_in_thread(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking CPU work (bcrypt) off the reactor thread."""
        if self._run_threads_inline:
            return func(*args)
        result: T = await threads.deferToThread(func, *args)
        return result

    def is_mine_id(self, user_id: str) -> bool:
        # The server name follows the first colon and may carry a port.
        return user_id.split(":", 1)[1] == self.hostname if ":" in user_id else False

    def is_mine_server_name(self, name: str) -> bool:
        return name == self.hostname

    # -- parts --

    def get_config(self) -> HomeServerConfig:
        return self.config

    def get_reactor(self) -> Any:
        return self.reactor

    @_part
    def get_clock(self) -> Clock:
        return Clock(self.reactor)

    @_part
    def get_db_pool(self) -> DatabasePool:
        from storage.database import DatabasePool
        from storage.engines import create_engine

        db = self.config.database
        engine = create_engine(db.name, db.args)
        return DatabasePool(engine, self.reactor,
                            max_connections=int(db.args.get("cp_max", 5)))

    @_part
    def get_datastores(self) -> DataStores:
        from storage.datastores import DataStores
        from storage.prepare import prepare_database

        pool = self.get_db_pool()
        prepare_database(pool)
        return DataStores(pool)

    @_part
    def get_signing_key(self) -> SigningKey:
        from homeserver.keys import read_signing_key

        return read_signing_key(self.config.signing_key_path)

    @_part
    def get_keyring(self) -> KeyRing:
        from federation.keyring import KeyRing

        keyring = KeyRing(self)
        client = self.get_federation_client()

        async def fetch(server_name: str, path: str, body: dict[str, Any] | None) -> Any:
            if body is None:
                return await client.request(server_name, "GET", path, sign=False)
            return await client.request(server_name, "POST", path, content=body, sign=False)

        keyring.set_fetcher(fetch)
        return keyring

    @_part
    def get_federation_client(self) -> FederationClient:
        from federation.client import FederationClient

        return FederationClient(self)

    @_part
    def get_federation_sender(self) -> FederationSender:
        from federation.sender import FederationSender

        return FederationSender(self)

    @_part
    def get_federation_backfill_handler(self) -> FederationBackfillHandler:
        from federation.backfill import FederationBackfillHandler

        return FederationBackfillHandler(self)

    @_part
    def get_federation_event_handler(self) -> FederationEventHandler:
        from federation.event_handler import FederationEventHandler

        return FederationEventHandler(self)

    @_part
    def get_server_visibility(self) -> ServerVisibility:
        from federation.server_visibility import ServerVisibility

        return ServerVisibility(self)

    @_part
    def get_federation_query_handler(self) -> FederationQueryHandler:
        from federation.query_handler import FederationQueryHandler

        return FederationQueryHandler(self)

    @_part
    def get_federation_serving_handler(self) -> FederationServingHandler:
        from federation.serving import FederationServingHandler

        return FederationServingHandler(self)

    @_part
    def get_federation_membership_handler(self) -> FederationMembershipHandler:
        from federation.membership import FederationMembershipHandler

        return FederationMembershipHandler(self)

    @_part
    def get_federation_auth(self) -> FederationAuth:
        from federation.transport.server import FederationAuth

        return FederationAuth(self)

    @_part
    def get_federation_ratelimiter(self) -> FederationRateLimiter:
        from federation.ratelimit import FederationRateLimiter

        return FederationRateLimiter(self)

    @_part
    def get_router(self) -> Router:
        from client_api import register_all_servlets
        from rest.http import Router

        router = Router()
        register_all_servlets(self, router)
        return router

    @_part
    def get_ratelimiters(self) -> Ratelimiters:
        from handlers.ratelimit import Ratelimiters

        return Ratelimiters(self)

    @_part
    def get_auth(self) -> Auth:
        from rest.auth import Auth

        return Auth(self)

    @_part
    def get_auth_handler(self) -> AuthHandler:
        from handlers.auth import AuthHandler

        return AuthHandler(self)

    @_part
    def get_password_handler(self) -> PasswordHandler:
        from handlers.passwords import PasswordHandler

        return PasswordHandler(self)

    @_part
    def get_token_handler(self) -> TokenHandler:
        from handlers.tokens import TokenHandler

        return TokenHandler(self)

    @_part
    def get_ui_auth_handler(self) -> UserInteractiveAuthHandler:
        from handlers.ui_auth import UserInteractiveAuthHandler

        return UserInteractiveAuthHandler(self)


    @_part
    def get_registration_handler(self) -> RegistrationHandler:
        from handlers.registration import RegistrationHandler

        return RegistrationHandler(self)

    @_part
    def get_shared_secret_registration_handler(self) -> SharedSecretRegistrationHandler:
        from handlers.admin_register import SharedSecretRegistrationHandler

        return SharedSecretRegistrationHandler(self)

    @_part
    def get_login_handler(self) -> LoginHandler:
        from handlers.login import LoginHandler

        return LoginHandler(self)

    @_part
    def get_account_handler(self) -> AccountHandler:
        from handlers.account import AccountHandler

        return AccountHandler(self)

    @_part
    def get_account_data_handler(self) -> AccountDataHandler:
        from handlers.account_data import AccountDataHandler

        return AccountDataHandler(self)

    @_part
    def get_device_handler(self) -> DeviceHandler:
        from handlers.devices import DeviceHandler

        return DeviceHandler(self)

    @_part
    def get_e2e_keys_handler(self) -> E2eKeysHandler:
        from handlers.e2e_keys import E2eKeysHandler

        return E2eKeysHandler(self)

    @_part
    def get_cross_signing_handler(self) -> CrossSigningHandler:
        from handlers.e2e_cross_signing import CrossSigningHandler

        return CrossSigningHandler(self)

    @_part
    def get_e2e_room_keys_handler(self) -> E2eRoomKeysHandler:
        from handlers.e2e_room_keys import E2eRoomKeysHandler

        return E2eRoomKeysHandler(self)

    @_part
    def get_device_list_handler(self) -> DeviceListHandler:
        from handlers.device_lists import DeviceListHandler

        return DeviceListHandler(self)

    @_part
    def get_profile_handler(self) -> ProfileHandler:
        from handlers.profile import ProfileHandler

        return ProfileHandler(self)

    @_part
    def get_user_directory_handler(self) -> UserDirectoryHandler:
        from handlers.user_directory import UserDirectoryHandler

        return UserDirectoryHandler(self)

    # -- rooms --

    @_part
    def get_state_handler(self) -> StateHandler:
        from handlers.state import StateHandler

        return StateHandler(self)

    @_part
    def get_event_creation_handler(self) -> EventCreationHandler:
        from handlers.event_creation import EventCreationHandler

        handler = EventCreationHandler(self)
        notifier = self.get_notifier()
        handler.add_persist_listener(notifier.on_room_event)
        # Built on the first local event, then sends each one to the room's servers.
        handler.add_persist_listener(
            lambda event, ordering: self.get_federation_sender().notify_new_event(
                event, ordering))
        # Invites of remote users are countersigned by their server before persisting.
        handler.set_remote_invite_sender(
            lambda event, state: self.get_federation_membership_handler().send_invite(
                event, state))
        return handler

    @_part
    def get_sync_handler(self) -> SyncHandler:
        from handlers.sync import SyncHandler

        return SyncHandler(self)

    @_part
    def get_notifier(self) -> Notifier:
        from handlers.notifier import Notifier

        return Notifier(self)

    @_part
    def get_presence_handler(self) -> PresenceHandler:
        from handlers.presence import PresenceHandler

        return PresenceHandler(self)

    @_part
    def get_to_device_handler(self) -> ToDeviceHandler:
        from handlers.to_device import ToDeviceHandler

        return ToDeviceHandler(self)

    @_part
    def get_audit_log(self) -> AuditLog:
        from handlers.audit_log import AuditLog

        return AuditLog(self)

    @_part
    def get_room_creation_handler(self) -> RoomCreationHandler:
        from handlers.room import RoomCreationHandler

        return RoomCreationHandler(self)

    @_part
    def get_room_member_handler(self) -> RoomMemberHandler:
        from handlers.room_member import RoomMemberHandler

        return RoomMemberHandler(self)

    @_part
    def get_reporting_handler(self) -> ReportingHandler:
        from handlers.reporting import ReportingHandler

        return ReportingHandler(self)

    @_part
    def get_timestamp_lookup_handler(self) -> TimestampLookupHandler:
        from handlers.timestamp_lookup import TimestampLookupHandler

        return TimestampLookupHandler(self)

    @_part
    def get_room_summary_handler(self) -> RoomSummaryHandler:
        from handlers.room_summary import RoomSummaryHandler

        return RoomSummaryHandler(self)

    @_part
    def get_legacy_sync_handler(self) -> LegacySyncHandler:
        from handlers.legacy_sync import LegacySyncHandler

        return LegacySyncHandler(self)

    @_part
    def get_mutual_rooms_handler(self) -> MutualRoomsHandler:
        from handlers.mutual_rooms import MutualRoomsHandler

        return MutualRoomsHandler(self)

    @_part
    def get_message_handler(self) -> MessageHandler:
        from handlers.message import MessageHandler

        return MessageHandler(self)

    @_part
    def get_directory_handler(self) -> DirectoryHandler:
        from handlers.directory import DirectoryHandler

        return DirectoryHandler(self)

    @_part
    def get_visibility_handler(self) -> VisibilityHandler:
        from handlers.visibility import VisibilityHandler

        return VisibilityHandler(self)

    @_part
    def get_room_read_handler(self) -> RoomReadHandler:
        from handlers.room_reads import RoomReadHandler

        return RoomReadHandler(self)

    @_part
    def get_bundled_aggregations(self) -> BundledAggregations:
        from handlers.relations import BundledAggregations

        return BundledAggregations(self)

    @_part
    def get_relations_handler(self) -> RelationsHandler:
        from handlers.relations import RelationsHandler

        return RelationsHandler(self)

    @_part
    def get_filter_handler(self) -> FilterHandler:
        from handlers.filter_handler import FilterHandler

        return FilterHandler(self)

    @_part
    def get_pagination_handler(self) -> PaginationHandler:
        from handlers.pagination import PaginationHandler

        return PaginationHandler(self)

    @_part
    def get_search_handler(self) -> SearchHandler:
        from handlers.search import SearchHandler

        return SearchHandler(self)

    @_part
    def get_room_members_read_handler(self) -> RoomMembersReadHandler:
        from handlers.room_members_read import RoomMembersReadHandler

        return RoomMembersReadHandler(self)

    @_part
    def get_receipts_handler(self) -> ReceiptsHandler:
        from handlers.receipts import ReceiptsHandler

        return ReceiptsHandler(self)

    @_part
    def get_push_rules_handler(self) -> PushRulesHandler:
        from handlers.push_rules import PushRulesHandler

        return PushRulesHandler(self)

    @_part
    def get_bulk_push_rule_evaluator(self) -> BulkPushRuleEvaluator:
        from handlers.bulk_push import BulkPushRuleEvaluator

        return BulkPushRuleEvaluator(self)

    @_part
    def get_typing_handler(self) -> TypingHandler:
        from handlers.typing import TypingHandler

        return TypingHandler(self)

    @_part
    def get_federation_device_query_handler(self) -> FederationDeviceQueryHandler:
        from federation.device_queries import FederationDeviceQueryHandler

        return FederationDeviceQueryHandler(self)

    @_part
    def get_openid_handler(self) -> OpenIdHandler:
        from handlers.openid import OpenIdHandler

        return OpenIdHandler(self)

    @_part
    def get_space_hierarchy_handler(self) -> SpaceHierarchyHandler:
        from handlers.space_hierarchy import SpaceHierarchyHandler

        return SpaceHierarchyHandler(self)

    # -- media --

    @_part
    def get_media_storage(self) -> MediaStorage:
        from handlers.media.storage import MediaStorage

        return MediaStorage(self)

    @_part
    def get_media_repository(self) -> MediaRepository:
        from handlers.media.repository import MediaRepository

        return MediaRepository(self)

    @_part
    def get_remote_media_fetcher(self) -> RemoteMediaFetcher:
        from handlers.media.remote import RemoteMediaFetcher

        return RemoteMediaFetcher(self)

    @_part
    def get_media_retention(self) -> MediaRetention:
        from handlers.media.retention import MediaRetention

        return MediaRetention(self)

    @_part
    def get_resumable_upload_handler(self) -> ResumableUploadHandler:
        from handlers.resumable_upload import ResumableUploadHandler

        return ResumableUploadHandler(self)

    @_part
    def get_completed_upload_sink(self) -> CompletedUploadSink:
        from handlers.resumable_upload import MediaRepositorySink

        return MediaRepositorySink(self.get_media_repository())

    @_part
    def get_url_preview_handler(self) -> UrlPreviewHandler:
        from handlers.url_preview import UrlPreviewHandler

        return UrlPreviewHandler(self)

    @_part
    def get_thumbnail_handler(self) -> ThumbnailHandler:
        from handlers.media_thumbnails import ThumbnailHandler

        return ThumbnailHandler(self)
