"""The media API tests again, with an S3 storage provider: a real S3 API (moto's server on
loopback, one per test class). Each test checks that files reach the bucket and that a
file missing on local disk is fetched back from S3."""

from __future__ import annotations

import os
import shutil
import unittest
from typing import Any

from tests.api import test_media
from tests.api.test_media import PNG

try:
    import boto3
    from moto.server import ThreadedMotoServer
except ImportError:  # pragma: no cover - reported by the skip below
    ThreadedMotoServer = None

BUCKET = "axon-media"


@unittest.skipIf(ThreadedMotoServer is None,
                 "needs boto3 and moto[server]: pip install -e '.[test]'")
class S3MediaTestCase(test_media.MediaTestCase):
    """The media API with files copied to (and fetched from) an S3 bucket."""

    server: Any = None
    endpoint = ""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        cls.server.start()
        host, port = cls.server.get_host_and_port()
        cls.endpoint = f"http://{host}:{port}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()
        super().tearDownClass()

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def make_config(self) -> dict[str, Any]:
        client = self.s3()
        # A fresh bucket per test.
        existing = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get(
            "Contents", [])] if BUCKET in [b["Name"] for b in client.list_buckets()[
                "Buckets"]] else None
        if existing is None:
            client.create_bucket(Bucket=BUCKET)
        for key in existing or []:
            client.delete_object(Bucket=BUCKET, Key=key)
        config = super().make_config()
        config["media_storage_providers"] = [{
            "module": "s3_storage_provider.S3StorageProviderBackend",
            "store_local": True, "store_remote": True, "store_synchronous": True,
            "config": {"bucket": BUCKET, "endpoint_url": self.endpoint,
                       "region_name": "us-east-1", "access_key_id": "test",
                       "secret_access_key": "test", "prefix": "media/"},
        }]
        return config

    def bucket_keys(self) -> list[str]:
        return [o["Key"] for o in self.s3().list_objects_v2(Bucket=BUCKET).get(
            "Contents", [])]

    def test_upload_reaches_bucket_and_is_fetched_back(self) -> None:
        """An upload is copied to the bucket; with the local copy gone (another machine,
        or a cleared cache) the download fetches it from S3."""
        mxc = self.upload_ok(PNG)
        keys = self.bucket_keys()
        self.assertEqual(len(keys), 1)
        self.assertTrue(keys[0].startswith("media/sha256/"))
        shutil.rmtree(os.path.join(self.config.media_store_path, "sha256"))
        channel = self.download(mxc)
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.result, PNG)

    def stored_files(self) -> list[str]:
        """Files in the bucket must match those on disk (the base tests compare these)."""
        local = super().stored_files()
        self.assertEqual(sorted(k.rsplit("/", 1)[1] for k in self.bucket_keys()), sorted(local))
        return local
