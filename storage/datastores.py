"""`DataStores`: every store, built once over one `DatabasePool`."""

from __future__ import annotations

from storage.database import DatabasePool
from storage.stores.account_data import AccountDataStore
from storage.stores.audit_log import AuditLogStore
from storage.stores.destinations import DestinationsStore
from storage.stores.device_lists import DeviceListStore
from storage.stores.devices import DeviceStore
from storage.stores.e2e_keys import E2eKeysStore
from storage.stores.e2e_room_keys import E2eRoomKeysStore
from storage.stores.event_federation import EventFederationStore
from storage.stores.events import EventsStore
from storage.stores.filters import FilterStore
from storage.stores.media import MediaStore
from storage.stores.media_thumbnails import MediaThumbnailStore
from storage.stores.moderation import ModerationStore
from storage.stores.openid import OpenIdStore
from storage.stores.presence import PresenceStore
from storage.stores.profiles import ProfileStore
from storage.stores.push_actions import PushActionsStore
from storage.stores.push_rules import PushRulesStore
from storage.stores.receipts import ReceiptsStore
from storage.stores.registration_tokens import RegistrationTokenStore
from storage.stores.relations import RelationsStore
from storage.stores.resumable_uploads import ResumableUploadStore
from storage.stores.roommember import RoomMemberStore
from storage.stores.rooms import RoomStore
from storage.stores.search import SearchStore
from storage.stores.server_keys import ServerKeysStore
from storage.stores.state import StateStore
from storage.stores.stream import StreamStore
from storage.stores.to_device import ToDeviceStore
from storage.stores.tokens import TokenStore
from storage.stores.ui_auth import UIAuthStore
from storage.stores.url_previews import UrlPreviewStore
from storage.stores.users import UserStore


class DataStores:
    """The stores, one attribute per data area (`hs.get_datastores().users`, ...)."""

    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self.users = UserStore(db)
        self.tokens = TokenStore(db)
        self.devices = DeviceStore(db, self.tokens)
        self.device_lists = DeviceListStore(db)
        self.ui_auth = UIAuthStore(db)
        self.profiles = ProfileStore(db)
        self.registration_tokens = RegistrationTokenStore(db)
        self.state = StateStore(db)
        self.search = SearchStore(db)
        self.relations = RelationsStore(db)
        self.events = EventsStore(db, self.state, self.search, self.relations)
        self.event_federation = EventFederationStore(db)
        self.room_members = RoomMemberStore(db)
        self.events.add_local_membership_listener(self.room_members.invalidate_rooms_for_user)
        self.events.add_room_membership_listener(self.room_members.invalidate_room)
        self.rooms = RoomStore(db)
        self.push_rules = PushRulesStore(db)
        self.push_actions = PushActionsStore(db)
        self.presence = PresenceStore(db)
        self.to_device = ToDeviceStore(db)
        self.receipts = ReceiptsStore(db)
        self.filters = FilterStore(db)
        self.stream = StreamStore(db)
        self.account_data = AccountDataStore(db)
        self.server_keys = ServerKeysStore(db)
        self.destinations = DestinationsStore(db)
        self.openid = OpenIdStore(db)
        self.e2e_keys = E2eKeysStore(db)
        self.e2e_room_keys = E2eRoomKeysStore(db)
        self.media = MediaStore(db)
        self.resumable_uploads = ResumableUploadStore(db)
        self.url_previews = UrlPreviewStore(db)
        self.media_thumbnails = MediaThumbnailStore(db)
        self.moderation = ModerationStore(db)
        self.audit_log = AuditLogStore(db)
