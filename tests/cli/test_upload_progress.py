"""``push`` shows a progress bar for its upload on a terminal (stderr), and the bytes
arrive intact through the wrapped body."""

from __future__ import annotations

import io
import os
from pathlib import Path

import boto3

from shipyard.cli.client import ShipyardClient
from shipyard.cli.upload_progress import ProgressReader, bar_line
from tests.conftest import LiveServer


def test_the_bar_line() -> None:
    assert bar_line(0, 4 << 20, "Uploading k") == (
        "Uploading k [------------------------------]   0%  0 B / 4.0 MiB"
    )
    assert bar_line(3 << 20, 4 << 20, "Uploading k").endswith("75%  3.0 MiB / 4.0 MiB")


def test_reads_move_the_bar_at_most_ten_times_a_second(tmp_path: Path) -> None:
    data = io.BytesIO(b"x" * 1000)
    out = io.StringIO()
    ticks = iter([0.0, 0.05, 0.2, 0.25])
    reader = ProgressReader(data, 1000, out, "Up", clock=lambda: next(ticks))
    for _ in range(4):
        reader.read(250)
    draws = out.getvalue().split("\r")[1:]
    assert [d.split("%")[0].split()[-1] for d in draws] == ["25", "75"]


def test_an_upload_with_a_progress_bar_arrives_intact(
    live_server: LiveServer, tmp_path: Path
) -> None:
    payload = os.urandom(3 << 20)
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(payload)
    session = boto3.Session(
        aws_access_key_id=live_server.access_key_id,
        aws_secret_access_key=live_server.secret_access_key,
    )
    client = ShipyardClient(live_server.url, live_server.region, session)
    client.ensure_bucket("bundles")
    shown = io.StringIO()
    client.upload(bundle, "bundles", "app/b.zip", progress=shown)
    got = live_server.client("s3").get_object(Bucket="bundles", Key="app/b.zip")["Body"].read()
    assert got == payload
    last = shown.getvalue().rstrip("\n").split("\r")[-1]
    assert last.endswith("100%  3.0 MiB / 3.0 MiB")
