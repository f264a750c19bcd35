"""The audit log store and admin roles, which the admin API builds on."""

from __future__ import annotations

from typing import Any

from handlers.audit_log import AuditAction
from handlers.auth import ROLE_ADMIN, ROLE_MODERATOR
from tests.harness import HomeserverTestCase


class AuditLogTestCase(HomeserverTestCase):
    def test_record_and_filter(self) -> None:
        """Entries come back newest first, filtered by actor, target, action and time."""
        audit = self.hs.get_audit_log()
        store = self.hs.get_datastores().audit_log
        first = self.get_success(audit.record(
            AuditAction.USER_DEACTIVATED, actor="@admin:test", target="@bob:test",
            details={"erase": True}))
        self.reactor.advance(10)
        second = self.get_success(audit.record(
            AuditAction.LOGIN, actor="@bob:test", target="@bob:test"))
        self.assertGreater(second, first)

        entries = self.get_success(store.get_entries(limit=10))
        self.assertEqual([e.id for e in entries], [second, first])
        self.assertEqual(entries[1].details, {"erase": True})
        self.assertEqual(entries[1].action, "user_deactivated")

        def ids(**filters: Any) -> list[int]:
            return [e.id for e in self.get_success(store.get_entries(limit=10, **filters))]

        self.assertEqual(ids(actor="@admin:test"), [first])
        self.assertEqual(ids(target="@bob:test"), [second, first])
        self.assertEqual(ids(action="login"), [second])
        self.assertEqual(ids(from_id=second), [first])
        self.assertEqual(ids(since_ts=entries[0].ts), [second])
        self.assertEqual(ids(until_ts=entries[0].ts), [first])
        self.assertEqual(ids(action="nothing"), [])


class AdminRoleTestCase(HomeserverTestCase):
    def test_roles(self) -> None:
        """Admins are "admin", moderators "moderator", others None; deactivation drops it."""
        self.register_user("root", admin=True)
        self.register_user("mod")
        self.register_user("plain")
        users = self.hs.get_datastores().users
        self.get_success(users.set_flags("@mod:test", admin_role=ROLE_MODERATOR))
        auth = self.hs.get_auth_handler()
        self.assertEqual(self.get_success(auth.get_admin_role("@root:test")), ROLE_ADMIN)
        self.assertEqual(self.get_success(auth.get_admin_role("@mod:test")), ROLE_MODERATOR)
        self.assertIsNone(self.get_success(auth.get_admin_role("@plain:test")))
        self.assertIsNone(self.get_success(auth.get_admin_role("@nobody:test")))
        self.get_success(users.set_flags("@mod:test", deactivated=True))
        self.assertIsNone(self.get_success(auth.get_admin_role("@mod:test")))
