"""Media across servers with real processes over loopback TLS: an Axon user downloads what
a user of the other server uploaded, and the other way round. The other server is a
second Axon, then a real Synapse 1.163."""

from __future__ import annotations

import os
import unittest
from typing import Any

from tests.integration.federation_pair import Client, ServerPairScenarios, federating_server
from tests.integration.synapse_process import SynapseProcess

DATA = os.urandom(300_000)


class _MediaAcrossServers(ServerPairScenarios):
    def upload(self, client: Client, data: bytes, name: str) -> str:
        code, _, raw = client.server.request(
            "POST", f"/_matrix/media/v3/upload?filename={name}", data, client.token,
            headers={"Content-Type": "image/png"})
        assert code == 200, raw
        import json
        uri: str = json.loads(raw)["content_uri"]
        return uri.removeprefix("mxc://")

    def download(self, client: Client, mxc: str) -> tuple[int, dict[str, str], bytes]:
        code, headers, raw = client.server.request(
            "GET", f"/_matrix/client/v1/media/download/{mxc}", token=client.token)
        return code, headers, raw

    def logs(self) -> str:
        return f"--- a ---\n{self.a.log()[-4000:]}\n--- b ---\n{self.b.log()[-4000:]}"

    def test_axon_media_downloaded_on_other_server(self) -> None:
        """Media uploaded on Axon is served to the other server's user (federation
        download of our multipart answer)."""
        mxc = self.upload(self.alice, DATA, "from-axon.png")
        code, headers, raw = self.download(self.bob, mxc)
        assert isinstance(self, unittest.TestCase)
        self.assertEqual(code, 200, f"{raw[:300]!r}\n{self.logs()}")
        self.assertEqual(raw, DATA)
        self.assertEqual(headers.get("Content-Type"), "image/png")

    def test_other_server_media_downloaded_on_axon(self) -> None:
        """Media uploaded on the other server is fetched by Axon for its user, cached, and
        served again from the cache."""
        mxc = self.upload(self.bob, DATA[::-1], "from-b.png")
        code, headers, raw = self.download(self.alice, mxc)
        assert isinstance(self, unittest.TestCase)
        self.assertEqual(code, 200, f"{raw[:300]!r}\n{self.logs()}")
        self.assertEqual(raw, DATA[::-1])
        self.assertEqual(headers.get("Content-Type"), "image/png")
        self.assertIn("from-b.png", headers.get("Content-Disposition", ""))
        self.assertEqual(self.download(self.alice, mxc)[2], DATA[::-1])


class AxonAxonMediaTestCase(_MediaAcrossServers, unittest.TestCase):
    @classmethod
    def make_b(cls) -> Any:
        return federating_server()


class AxonSynapseMediaTestCase(_MediaAcrossServers, unittest.TestCase):
    @classmethod
    def make_b(cls) -> Any:
        return SynapseProcess()
