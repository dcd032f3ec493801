"""Right to be forgotten on a backfilled home with planted persons: after a purge the subject is in no file's
bytes (decoded Parquet and gzip included), the receipt says what was touched, and a second run is a no-op."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from logpilot_dagster.cli import main
from logpilot_dagster.privacy.pseudonym import PseudonymKeys
from logpilot_dagster.storage.unique import duplicate_ids
from logpilot_dagster_tests.purge_home import (EMAIL, KEYS, NEIGHBOUR, SUBJECT, VALUE, build_planted_home,
                                               dump_uncompressed, files_holding)

LANDING = ("landing_zone",)


def _env(mp: pytest.MonkeyPatch, tmp: Path, mode: str) -> None:
    key_file = tmp / "pseudonym.key"
    key_file.write_text("\n".join(KEYS) + "\n")
    key_file.chmod(0o600)
    mp.setenv("LOGPILOT_PSEUDONYM_KEY_FILE", str(key_file))
    mp.delenv("LOGPILOT_PSEUDONYM_KEY", raising=False)
    mp.setenv("LOGPILOT_PII_MODE", mode)
    for name in ("LOGPILOT_TIER_BUCKET", "LOGPILOT_LANDING_BUCKET"):
        mp.delenv(name, raising=False)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """Two backfilled sample years with the planted persons, in pseudonymize mode under two keys."""
    tmp = tmp_path_factory.mktemp("purge")
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, tmp, "pseudonymize")
        build_planted_home(tmp / "home")
        yield tmp / "home"


@pytest.fixture(scope="module")
def redact_home(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("purge_redact")
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, tmp, "redact")
        build_planted_home(tmp / "home", years=(2022,), lines=3000, vectors=False)
        yield tmp / "home"


def tokens() -> list[str]:
    return PseudonymKeys.load().tokens("email", EMAIL)


def run_purge(home: Path, *args: str, capsys) -> tuple[int, dict, str]:
    capsys.readouterr()
    rc = main(["--home", str(home), "purge", *args, "--json"])
    receipt = json.loads(capsys.readouterr().out)
    return rc, receipt, json.dumps(receipt)


def live_data_holds(home: Path, tmp_path: Path, needles: list[str]) -> list[str]:
    """Needles found in an uncompressed copy of the warehouse's live data (what SQL would see)."""
    data = dump_uncompressed(home / "logs.duckdb", tmp_path / "dump.duckdb").read_bytes().lower()
    return [n for n in needles if n.lower().encode() in data]


def test_email_purge_removes_tokens_under_every_key_and_is_idempotent(home, tmp_path, capsys):
    needles = [EMAIL] + tokens()
    assert len(tokens()) == 2  # the current key and the rotated-out one
    before = files_holding(home, needles, skip=LANDING)
    assert "logs.duckdb" in before and any(p.startswith("parquet/") for p in before)
    with duckdb.connect(str(home / "logs.duckdb"), read_only=True) as con:
        rows_before = con.execute("SELECT count(*) FROM logs").fetchone()[0]

    rc, receipt, text = run_purge(home, "--email", EMAIL, capsys=capsys)

    assert rc == 0
    assert files_holding(home, needles, skip=LANDING) == []
    assert live_data_holds(home, tmp_path, needles) == []
    assert receipt["touched"]["hot"]["logs"] >= 2 and receipt["touched"]["hot"]["quarantine"] >= 1
    assert receipt["warehouse_rewritten"] is True
    assert receipt["landing"]["files"] == ["auth-service/2022/auth-service-2022-q1.log"]
    assert all(n.lower() not in text.lower() for n in needles)  # the receipt holds a fingerprint only
    stored = json.loads((home / "state" / "receipts" / f"{receipt['request_id']}.json").read_text())
    assert stored["fingerprint"] == receipt["fingerprint"]
    with duckdb.connect(str(home / "logs.duckdb")) as con:
        assert con.execute("SELECT count(*) FROM logs").fetchone()[0] == rows_before  # re-masked, not deleted
        assert con.execute("SELECT count(*) FROM purge_receipts WHERE request_id = ?",
                           [receipt["request_id"]]).fetchone()[0] == 1
        assert duplicate_ids(con) == 0
        assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'stream_offsets' "
                           "AND constraint_type = 'PRIMARY KEY'").fetchone()[0] == 1  # the copy kept the keys

    db_bytes = hashlib.sha256((home / "logs.duckdb").read_bytes()).hexdigest()
    rc, again, _ = run_purge(home, "--email", EMAIL, capsys=capsys)
    assert again["total_touched"] == 0 and not again["warehouse_rewritten"]
    assert again["earlier_requests"] == [receipt["request_id"]]
    assert again["landing"]["files"] == receipt["landing"]["files"]
    capsys.readouterr()
    main(["--home", str(home), "purge", "--email", EMAIL, "--dry-run"])
    assert "nothing to purge" in capsys.readouterr().out
    assert hashlib.sha256((home / "logs.duckdb").read_bytes()).hexdigest() != db_bytes  # only the receipt row

    landing = home / "landing_zone" / "auth-service" / "2022" / "auth-service-2022-q1.log"
    lines = landing.read_text().count("\n")
    rc, landed, _ = run_purge(home, "--email", EMAIL, "--include-landing", capsys=capsys)
    assert landed["landing"]["rewritten"] is True
    assert files_holding(home, needles) == []
    assert landing.read_text().count("\n") == lines


def test_value_purge_rewrites_templates_registry_shards_and_chroma(home, tmp_path, capsys):
    stray = home / "state" / "tiering" / "left-by-a-killed-run.parquet"  # zstd: a byte search cannot see in
    stray.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"message": [f"reset by {VALUE}", "other"]}), stray, compression="zstd")
    before = files_holding(home, [VALUE], skip=LANDING)
    assert {"chroma/chroma.sqlite3", "state/registry.json", "logs.duckdb", stray.relative_to(home).as_posix()} \
        <= set(before)
    from logpilot_dagster.knowledge.vectors import collection

    vectors_before = collection(home / "chroma").count()

    rc, receipt, text = run_purge(home, "--value", VALUE, capsys=capsys)

    assert files_holding(home, [VALUE], skip=LANDING) == []
    assert live_data_holds(home, tmp_path, [VALUE]) == []
    assert receipt["touched"]["hot"]["templates"] >= 1 and receipt["touched"]["chroma"]["log_templates"] >= 1
    assert any(p.startswith("state/shards/") for p in receipt["state_files"])
    assert VALUE.lower() not in text.lower()
    with duckdb.connect(str(home / "logs.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM templates WHERE template LIKE '%<PURGED>%'").fetchone()[0] >= 1
        assert con.execute("SELECT count(*) FROM logs WHERE component = '<PURGED>'").fetchone()[0] == 1
    assert collection(home / "chroma").count() == vectors_before  # re-masked and re-embedded, not dropped
    rc, again, _ = run_purge(home, "--value", VALUE, capsys=capsys)
    assert again["total_touched"] == 0


def test_subject_id_purge_is_whole_word(home, tmp_path, capsys):
    rc, receipt, _ = run_purge(home, "--subject-id", SUBJECT, capsys=capsys)
    assert receipt["touched"]["hot"]["logs"] == 2
    assert files_holding(home, [SUBJECT], whole_word=True, skip=LANDING) == []
    assert live_data_holds(home, tmp_path, [NEIGHBOUR]) == [NEIGHBOUR]  # a longer id is another subject


def test_dry_run_changes_no_file(home, capsys):
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in home.rglob("*") if p.is_file()}
    rc, receipt, _ = run_purge(home, "--subject-id", NEIGHBOUR, "--dry-run", capsys=capsys)
    assert receipt["dry_run"] and receipt["total_touched"] >= 1
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in home.rglob("*") if p.is_file()}
    assert [p for p in after.keys() | digests.keys() if after.get(p) != digests.get(p)] == []


def test_service_range_purge_deletes_only_that_range(home, capsys):
    start, end = "2022-06-01T00:00:00", "2022-07-01T00:00:00"
    query = ("SELECT count(*) FILTER (ts >= ? AND ts < ?), count(*) FROM logs WHERE service = 'payments-api'")
    with duckdb.connect(str(home / "logs.duckdb"), read_only=True) as con:
        inside, total = con.execute(query, [start, end]).fetchone()
    assert inside > 0
    rc, receipt, _ = run_purge(home, "--service", "payments-api", "--from", start, "--to", end, capsys=capsys)
    assert receipt["touched"]["hot"]["logs"] == inside
    assert receipt["touched"]["staged_parquet"]["rows"] == inside
    with duckdb.connect(str(home / "logs.duckdb"), read_only=True) as con:
        assert con.execute(query, [start, end]).fetchone() == (0, total - inside)
        staged = con.execute("SELECT count(*) FROM read_parquet(?) WHERE service = 'payments-api' AND ts >= ? "
                             "AND ts < ?", [str(home / "parquet/logs/year=2022/*.parquet"), start, end]).fetchone()[0]
    assert staged == 0


def test_bad_request_is_refused(home, capsys):
    assert main(["--home", str(home), "purge", "--service", "payments-api"]) == 2
    assert "--from and --to" in capsys.readouterr().out
    assert main(["--home", str(home), "purge", "--value", "a"]) == 2  # would re-mask every "a"
    assert "at least 4 characters" in capsys.readouterr().out


def test_redact_mode_email_was_never_stored(redact_home, capsys):
    rc, receipt, text = run_purge(redact_home, "--email", EMAIL, capsys=capsys)
    assert any("nothing stored links to this subject" in n for n in receipt["notes"])
    assert files_holding(redact_home, [EMAIL] + tokens(), skip=LANDING) == []
    assert receipt["landing"]["files"] == ["auth-service/2022/auth-service-2022-q1.log"]


def test_purge_job_runs_the_same_request_and_reports_its_own_run_storage(redact_home):
    import dagster as dg

    from logpilot_dagster.defs.purge import purge
    from logpilot_dagster_tests.pipeline import resources

    (redact_home / "dagster_home").mkdir(exist_ok=True)
    with dg.DagsterInstance.local_temp(str(redact_home / "dagster_home")) as instance:
        result = purge.execute_in_process(
            run_config={"ops": {"purge_subject": {"config": {"value": VALUE, "dry_run": True}}}},
            resources=resources(redact_home), instance=instance)
    assert result.success
    receipt = result.output_for_node("purge_subject")
    assert receipt["dry_run"] and receipt["total_touched"] >= 1 and receipt["kind"] == "value"
    # Dagster keeps the run config (the value) in its run storage: the receipt says so rather than hiding it
    assert any(path.startswith("dagster_home/") for path in receipt["residual"])
