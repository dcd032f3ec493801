"""A real S3 endpoint on loopback (moto's ThreadedMotoServer) and a tier bucket on it, for the S3 tests."""

import socket

import boto3
import pytest
from moto.server import ThreadedMotoServer

TIER_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "LOGPILOT_TIER_BUCKET": "tiers", "LOGPILOT_TIER_PREFIX": "lp"}


@pytest.fixture
def moto_endpoint():
    """``http://127.0.0.1:PORT`` of a fresh moto server, stopped after the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def tier_bucket(moto_endpoint, monkeypatch):
    """(client, endpoint) with bucket ``tiers`` created and the tier store pointed at ``s3://tiers/lp``."""
    for name, value in {**TIER_ENV, "LOGPILOT_S3_ENDPOINT_URL": moto_endpoint}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="tiers")
    return client, moto_endpoint
