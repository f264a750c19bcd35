"""Real clients' media calls against the real server process: matrix-nio `upload` and
`download`, and matrix-js-sdk `uploadContent` plus a download by its authenticated URL."""

from __future__ import annotations

import asyncio
import io
import os
import unittest

import nio

from tests.integration.server_process import ServerProcess
from tests.js.runner import require_packages, run_script


class MediaClientsTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess()
        try:
            cls.server.start()
            cls.server.register_user("carol", "carol-password-1")
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def test_nio_upload_and_download(self) -> None:
        """nio uploads a file and downloads it back (authenticated download), with its
        content type and file name."""
        data = os.urandom(150_000)

        async def scenario() -> None:
            client = nio.AsyncClient(self.server.base_url, "@carol:localhost")
            try:
                login = await client.login("carol-password-1")
                self.assertIsInstance(login, nio.LoginResponse, login)
                resp, _keys = await client.upload(
                    lambda *_: io.BytesIO(data), content_type="image/png",
                    filename="nio.png", filesize=len(data))
                self.assertIsInstance(resp, nio.UploadResponse, resp)
                self.assertTrue(resp.content_uri.startswith("mxc://localhost/"))
                down = await client.download(mxc=resp.content_uri)
                self.assertIsInstance(down, nio.DownloadResponse, down)
                self.assertEqual(down.body, data)
                self.assertEqual(down.content_type, "image/png")
                self.assertEqual(down.filename, "nio.png")
            finally:
                await client.close()

        asyncio.run(scenario())

    def test_js_sdk_upload_and_download(self) -> None:
        """matrix-js-sdk uploads with uploadContent, reads the media config, and downloads
        through the authenticated URL from mxcUrlToHttp: the same bytes come back."""
        require_packages("matrix-js-sdk")
        result = run_script("media_scenario.mjs", {"account": {
            "base_url": self.server.base_url, "user_id": "@carol:localhost",
            "password": "carol-password-1"}, "size": 200_000}, timeout=90)
        self.assertEqual(result.errors, [], result.explain())
        self.assertTrue(result["content_uri"].startswith("mxc://localhost/"))
        self.assertIn("/_matrix/client/v1/media/download/", result["download_url"])
        self.assertEqual(result["status"], 200)
        self.assertEqual(result["download_sha256"], result["sha256"])
        self.assertEqual(result["content_type"], "image/png")
        self.assertEqual(result["config"], {"m.upload.size": 50 * 1024 * 1024})
        self.assertEqual(result["content_disposition"],
                         "inline; filename*=utf-8''js%20sdk.png")
