"""Real object-store APIs on 127.0.0.1 for the archive and export tests: moto's S3 and Azurite.

moto runs in server mode (`ThreadedMotoServer`, a real HTTP S3 API; 5.2.5 or later, since 5.2.1
breaks pyarrow's multipart uploads), Azurite as the npm package pinned in this folder's
package.json (`npm ci` here, done by .ci/run). Nothing mocks pyarrow.fs: the code under test
speaks HTTP to them exactly as to AWS and Azure. A missing Azurite is an error, not a skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from storage.archive.location import ObjectStoreOptions

__all__ = ["AZURITE_ACCOUNT", "AZURITE_KEY", "ObjectStore", "azurite", "moto_s3"]

HERE: Final = Path(__file__).resolve().parent
AZURITE_BIN: Final = HERE / "node_modules" / ".bin" / "azurite-blob"
#: Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT: Final = "devstoreaccount1"
AZURITE_KEY: Final = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
S3_KEY: Final = "testing"


@dataclass(frozen=True)
class ObjectStore:
    """A running object-store API: how to reach it."""

    kind: str
    endpoint: str
    options: ObjectStoreOptions

    def new_url(self, client: Any = None, *, object_lock: bool = False) -> str:
        """A fresh bucket (S3) or container (Azure) with a prefix inside, as a URL."""
        name = f"gt-{uuid.uuid4().hex[:12]}"
        if self.kind == "s3":
            s3 = client or self.s3_client()
            s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
            return f"s3://{name}/archive"
        from storage.archive.location import open_location

        location = open_location(f"abfs://{name}/archive", self.options)
        location.fs.create_dir(name)
        return f"abfs://{name}/archive"

    def s3_client(self) -> Any:
        """boto3 against the moto server."""
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_KEY,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def moto_s3() -> Iterator[ObjectStore]:
    """Moto's S3 in server mode on a free loopback port, for the block."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", S3_KEY)  # boto3 and pyarrow inside moto's own checks
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", S3_KEY)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    options = ObjectStoreOptions(
        s3_endpoint_url=endpoint, s3_region="us-east-1", s3_access_key=S3_KEY, s3_secret_key=S3_KEY
    )
    try:
        yield ObjectStore("s3", endpoint, options)
    finally:
        server.stop()


@contextmanager
def azurite(workdir: Path) -> Iterator[ObjectStore]:
    """Azurite's Blob service on a free loopback port, data in `workdir`, for the block."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"Azurite is not installed: run `npm ci` in {HERE}")
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(AZURITE_BIN),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(workdir),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Azurite did not start") from None
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        options = ObjectStoreOptions(
            azure_account_name=AZURITE_ACCOUNT, azure_account_key=AZURITE_KEY, azure_blob_endpoint=endpoint
        )
        yield ObjectStore("azure", endpoint, options)
    finally:
        proc.kill()  # an emulator with throw-away data: no need to wait for a graceful stop
        proc.wait(10)
