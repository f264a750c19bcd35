"""matrix-nio, a real Matrix client library, against the real server process."""

from __future__ import annotations

import asyncio
import unittest

import nio

from tests.integration.server_process import ServerProcess


class NioTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess(config_overrides={
            "enable_registration": True, "enable_registration_without_verification": True})
        try:
            cls.server.start()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def test_register_login_whoami_room_logout(self) -> None:
        """nio registers, logs in, whoamis, creates a room, sends, and logs out."""

        async def scenario() -> None:
            client = nio.AsyncClient(self.server.base_url, "carol")
            try:
                resp = await client.register("carol", "nio-password-1")
                self.assertIsInstance(resp, nio.RegisterResponse, resp)
                self.assertEqual(resp.user_id, "@carol:localhost")

                login = nio.AsyncClient(self.server.base_url, "@carol:localhost")
                try:
                    resp = await login.login("nio-password-1", device_name="nio test")
                    self.assertIsInstance(resp, nio.LoginResponse, resp)
                    who = await login.whoami()
                    self.assertIsInstance(who, nio.WhoamiResponse, who)
                    self.assertEqual(who.user_id, "@carol:localhost")
                    room = await login.room_create(name="nio room")
                    self.assertIsInstance(room, nio.RoomCreateResponse, room)
                    sent = await login.room_send(room.room_id, "m.room.message",
                                                 {"msgtype": "m.text", "body": "hi"})
                    self.assertIsInstance(sent, nio.RoomSendResponse, sent)
                    out = await login.logout()
                    self.assertIsInstance(out, nio.LogoutResponse, out)
                    login.access_token = resp.access_token
                    again = await login.whoami()
                    self.assertIsInstance(again, nio.WhoamiError)
                finally:
                    await login.close()
                bad = nio.AsyncClient(self.server.base_url, "@carol:localhost")
                try:
                    resp = await bad.login("wrong-password")
                    self.assertIsInstance(resp, nio.LoginError)
                    self.assertEqual(resp.status_code, "M_FORBIDDEN")
                finally:
                    await bad.close()
            finally:
                await client.close()

        asyncio.run(scenario())

    def test_create_invite_join_send(self) -> None:
        """Two nio clients: one creates a room and invites, the other joins and sends."""
        self.server.register_user("nina", "nina-password-1")
        self.server.register_user("otto", "otto-password-1")

        async def scenario() -> None:
            nina = nio.AsyncClient(self.server.base_url, "@nina:localhost")
            otto = nio.AsyncClient(self.server.base_url, "@otto:localhost")
            try:
                self.assertIsInstance(await nina.login("nina-password-1"), nio.LoginResponse)
                self.assertIsInstance(await otto.login("otto-password-1"), nio.LoginResponse)
                room = await nina.room_create(name="team", invite=["@otto:localhost"])
                self.assertIsInstance(room, nio.RoomCreateResponse, room)
                joined = await otto.join(room.room_id)
                self.assertIsInstance(joined, nio.JoinResponse, joined)
                sent = await otto.room_send(room.room_id, "m.room.message",
                                            {"msgtype": "m.text", "body": "hello nina"})
                self.assertIsInstance(sent, nio.RoomSendResponse, sent)
                members = await nina.joined_members(room.room_id)
                self.assertIsInstance(members, nio.JoinedMembersResponse, members)
                self.assertEqual(sorted(m.user_id for m in members.members),
                                 ["@nina:localhost", "@otto:localhost"])
                rooms = await otto.joined_rooms()
                self.assertEqual(rooms.rooms, [room.room_id])
                left = await otto.room_leave(room.room_id)
                self.assertIsInstance(left, nio.RoomLeaveResponse, left)
                denied = await otto.room_send(room.room_id, "m.room.message",
                                              {"msgtype": "m.text", "body": "again"})
                self.assertIsInstance(denied, nio.RoomSendError)
                self.assertEqual(denied.status_code, "M_FORBIDDEN")
            finally:
                await nina.close()
                await otto.close()

        asyncio.run(scenario())
