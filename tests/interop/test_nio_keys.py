"""matrix-nio (without libolm) uploads, queries and claims keys against the real server:
its own request builders, and its response schemas judge our answers."""

from __future__ import annotations

import asyncio
import unittest
from typing import Any

import nio

from tests.api.e2e_helpers import SIG, device_keys
from tests.integration.server_process import ServerProcess


class NioKeysTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess()
        try:
            cls.server.start()
            cls.server.register_user("nia", "nio-password-1")
            cls.server.register_user("nico", "nio-password-2")
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def test_upload_query_claim(self) -> None:
        """nio's keys_upload/keys_query/keys_claim requests succeed and parse."""

        async def call(client: nio.AsyncClient, response: Any, request: Any) -> Any:
            method, path, data = request
            # nio's builders put the token in the query; the high-level calls (and we)
            # use the Authorization header.
            path = path.split("?")[0]
            transport = await client.send(method, path, data, headers={
                "Authorization": f"Bearer {client.access_token}",
                "Content-Type": "application/json"})
            return response.from_dict(await transport.json())

        async def scenario() -> None:
            nia = nio.AsyncClient(self.server.base_url, "@nia:localhost")
            nico = nio.AsyncClient(self.server.base_url, "@nico:localhost")
            try:
                login = await nia.login("nio-password-1")
                self.assertIsInstance(login, nio.LoginResponse, login)
                self.assertIsInstance(await nico.login("nio-password-2"),
                                      nio.LoginResponse)
                keys, _ = device_keys(nia.user_id, nia.device_id)
                upload = await call(nia, nio.KeysUploadResponse, nio.Api.keys_upload(
                    nia.access_token, {"device_keys": keys, "one_time_keys": {
                        "signed_curve25519:AAAAAQ": {"key": "k1", "signatures": SIG}}}))
                self.assertIsInstance(upload, nio.KeysUploadResponse, upload)
                self.assertEqual(upload.signed_curve25519_count, 1)
                query = await call(nico, nio.KeysQueryResponse, nio.Api.keys_query(
                    nico.access_token, {nia.user_id}))
                self.assertIsInstance(query, nio.KeysQueryResponse, query)
                self.assertIn(nia.device_id, query.device_keys[nia.user_id])
                claim = await call(nico, nio.KeysClaimResponse, nio.Api.keys_claim(
                    nico.access_token, {nia.user_id: [nia.device_id]}))
                self.assertIsInstance(claim, nio.KeysClaimResponse, claim)
                self.assertEqual(list(claim.one_time_keys[nia.user_id][nia.device_id]),
                                 ["signed_curve25519:AAAAAQ"])
            finally:
                await nia.close()
                await nico.close()

        asyncio.run(scenario())
