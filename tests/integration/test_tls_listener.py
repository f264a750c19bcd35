"""The TLS federation listener made by `generate-config --federation-port`."""

from __future__ import annotations

import json
import ssl
import unittest
import urllib.error
import urllib.request

from tests.integration.server_process import ServerProcess


class TlsListenerTestCase(unittest.TestCase):
    def test_federation_listener_serves_tls(self) -> None:
        server = ServerProcess(server_name="tls.test", federation_tls=True)
        try:
            server.start()
            url = f"https://127.0.0.1:{server.federation_port}/_matrix/key/v2/server"
            # The development certificate is self-signed: a verifying client refuses it...
            with self.assertRaises(urllib.error.URLError):
                urllib.request.urlopen(url, timeout=10)
            # ...and one that does not verify gets the signed key document over TLS.
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
                body = json.load(resp)
                # No software version on the federation listener either.
                self.assertEqual(resp.headers.get("Server"), "Axon")
            self.assertEqual(body["server_name"], "tls.test")
            with ssl.create_connection(("127.0.0.1", server.federation_port)) as sock, \
                    ctx.wrap_socket(sock) as tls:
                cert = tls.getpeercert(binary_form=True)
            self.assertTrue(cert)
            # The client API is not on the federation-only listener.
            req = urllib.request.Request(
                f"https://127.0.0.1:{server.federation_port}/_matrix/client/versions")
            with self.assertRaises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, context=ctx, timeout=10)
            self.assertEqual(err.exception.code, 404)
        finally:
            server.close()

    def test_tls_listener_without_certificate_stops_startup(self) -> None:
        server = ServerProcess(server_name="tls.test", federation_tls=True)
        try:
            import yaml

            with open(server.config_path) as f:
                config = yaml.safe_load(f)
            del config["tls_certificate_path"]
            server.write_config(config)
            with self.assertRaises(RuntimeError) as err:
                server.start(timeout=20)
            self.assertIn("tls_certificate_path", str(err.exception))
        finally:
            server.close()
