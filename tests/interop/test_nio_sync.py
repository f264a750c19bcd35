"""matrix-nio's real sync loop against the real server: messages, typing, receipts and
to-device messages arrive through long-polling /sync."""

from __future__ import annotations

import asyncio
import time
import unittest
from typing import Any

import nio

from tests.integration.server_process import ServerProcess


class NioSyncTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess()
        try:
            cls.server.start()
            cls.server.register_user("nina", "nina-password-1")
            cls.server.register_user("otto", "otto-password-1")
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def test_sync_loop_receives_everything(self) -> None:
        async def scenario() -> None:
            nina = nio.AsyncClient(self.server.base_url, "@nina:localhost")
            otto = nio.AsyncClient(self.server.base_url, "@otto:localhost")
            got: dict[str, list[Any]] = {"message": [], "typing": [], "receipt": [],
                                         "to_device": []}
            delays: list[float] = []
            sent_at: dict[str, float] = {}

            async def on_message(room: Any, event: nio.RoomMessageText) -> None:
                got["message"].append(event.body)
                if event.body in sent_at:
                    delays.append(time.monotonic() - sent_at[event.body])

            async def on_typing(room: Any, event: nio.TypingNoticeEvent) -> None:
                got["typing"].append(list(event.users))

            async def on_receipt(room: Any, event: nio.ReceiptEvent) -> None:
                got["receipt"].extend((r.event_id, r.user_id) for r in event.receipts)

            async def on_to_device(event: nio.UnknownToDeviceEvent) -> None:
                got["to_device"].append(event.source["content"])

            nina.add_event_callback(on_message, nio.RoomMessageText)
            nina.add_ephemeral_callback(on_typing, nio.TypingNoticeEvent)
            nina.add_ephemeral_callback(on_receipt, nio.ReceiptEvent)
            nina.add_to_device_callback(on_to_device, nio.UnknownToDeviceEvent)
            loop_task: asyncio.Task[Any] | None = None
            try:
                self.assertIsInstance(await nina.login("nina-password-1"), nio.LoginResponse)
                self.assertIsInstance(await otto.login("otto-password-1"), nio.LoginResponse)
                room = await nina.room_create(name="sync", invite=["@otto:localhost"])
                self.assertIsInstance(room, nio.RoomCreateResponse, room)
                self.assertIsInstance(await otto.join(room.room_id), nio.JoinResponse)
                first = await nina.sync(timeout=0, full_state=True)
                self.assertIsInstance(first, nio.SyncResponse, first)
                loop_task = asyncio.create_task(nina.sync_forever(timeout=30000))
                await asyncio.sleep(0.3)

                for i in range(5):
                    body = f"hello {i}"
                    sent_at[body] = time.monotonic()
                    resp = await otto.room_send(room.room_id, "m.room.message",
                                                {"msgtype": "m.text", "body": body})
                    self.assertIsInstance(resp, nio.RoomSendResponse, resp)
                    await asyncio.sleep(0.05)
                last_event = resp.event_id
                self.assertIsInstance(await otto.room_typing(room.room_id, True, 10000),
                                      nio.RoomTypingResponse)
                receipt = await otto.update_receipt_marker(room.room_id, last_event)
                self.assertIsInstance(receipt, nio.UpdateReceiptMarkerResponse, receipt)
                sent = await otto.to_device(nio.ToDeviceMessage(
                    "org.example.ping", "@nina:localhost", nina.device_id, {"n": 1}))
                self.assertIsInstance(sent, nio.ToDeviceResponse, sent)

                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not (
                        len(got["message"]) >= 5 and got["typing"] and got["receipt"]
                        and got["to_device"]):
                    await asyncio.sleep(0.05)
            finally:
                if loop_task is not None:
                    loop_task.cancel()
                await nina.close()
                await otto.close()

            self.assertEqual(got["message"], [f"hello {i}" for i in range(5)])
            self.assertIn(["@otto:localhost"], got["typing"])
            self.assertIn((last_event, "@otto:localhost"), got["receipt"])
            self.assertEqual(got["to_device"], [{"n": 1}])
            # Long-poll delivery is prompt (generous bound for a loaded CI machine).
            self.assertLess(max(delays), 2.0, delays)

        asyncio.run(scenario())
