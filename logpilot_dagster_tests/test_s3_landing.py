"""The landing zone on S3 (the S3Connection resource) against a real moto server on loopback."""


import boto3
import duckdb

from logpilot_dagster.defs.resources import LandingZone, S3Connection
from logpilot_dagster.ingest.sample_data import write_sample_home
from logpilot_dagster_tests.pipeline import materialize_year, metadata


def test_backfill_reads_the_landing_zone_from_s3(tmp_path, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    local = tmp_path / "local"
    write_sample_home(local, total_lines=8_000, years=(2024,))
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="landing")
    files = [p for p in (local / "landing_zone").rglob("*") if p.is_file()]
    for path in files:
        s3.upload_file(str(path), "landing", f"raw/{path.relative_to(local / 'landing_zone').as_posix()}")

    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "sources.yaml").write_text((local / "sources.yaml").read_text())
    zone = LandingZone(s3_bucket="landing", s3_prefix="raw",
                       s3=S3Connection(endpoint_url=moto_endpoint, region_name="us-east-1"))
    result = materialize_year(remote, 2024, landing_zone=zone)
    assert metadata(result, "landing_files")["store"] == "s3://landing/raw"
    assert metadata(result, "landing_files")["files"] == len(files)
    materialize_year(local, 2024)

    def rows(home):
        con = duckdb.connect(str(home / "logs.duckdb"), read_only=True)
        try:
            return con.execute("SELECT count(*), sum(hash(event_id, template_id, message)) FROM logs").fetchone()
        finally:
            con.close()

    assert rows(remote) == rows(local) and rows(remote)[0] > 7_000
