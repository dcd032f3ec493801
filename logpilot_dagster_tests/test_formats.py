"""Header format rules: every line of the 16 Loghub-2k systems parses with its given format."""

import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from logpilot_dagster.ingest.formats import EPOCH, LoghubFormat, make_format, parse_timestamps

LOGHUB = Path(__file__).parent / "data" / "loghub_2k"
SYSTEMS = json.loads((LOGHUB / "formats.json").read_text())
# Path year for the systems whose timestamps carry none.
YEARS = {"Linux": 2005, "Android": 2017, "Proxifier": 2017, "OpenSSH": 2017, "Mac": 2017}
FIRST_TS = {
    "HDFS": datetime(2008, 11, 9, 20, 36, 15), "BGL": datetime(2005, 6, 3, 22, 42, 50),
    "Apache": datetime(2005, 12, 4, 4, 47, 44), "Proxifier": datetime(2017, 10, 30, 16, 49, 6),
    "HealthApp": datetime(2017, 12, 23, 22, 15, 29, 606000), "Mac": datetime(2017, 7, 1, 9, 0, 55),
}


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_every_loghub_line_parses(system):
    lines = (LOGHUB / f"{system}_2k.log").read_text(encoding="utf-8", errors="replace").splitlines()
    raw = pa.array(lines)
    fmt = LoghubFormat(SYSTEMS[system]["log_format"])
    fmt.ts_layout = fmt.detect_layout(raw.slice(0, 300), YEARS.get(system))
    assert fmt.ts_layout is not None
    parsed = fmt.parse(raw, YEARS.get(system))
    assert pc.sum(parsed.ok).as_py() == len(lines) == 2000
    assert pc.all(pc.is_in(parsed.level, pa.array(["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]))).as_py()
    assert pc.all(pc.greater(pc.utf8_length(parsed.content), -1)).as_py()
    if system in FIRST_TS:
        assert parsed.ts[0].as_py() == FIRST_TS[system]


def test_epoch_and_timezone_normalise_to_utc():
    assert parse_timestamps(pa.array(["1117838570"]), EPOCH, None)[0].as_py() == datetime(2005, 6, 3, 22, 42, 50)
    ny = parse_timestamps(pa.array(["2020-01-01 00:00:00"]), "%Y-%m-%d %H:%M:%S", None, "America/New_York")
    assert ny[0].as_py() == datetime(2020, 1, 1, 5, 0)


def test_yearless_layout_takes_the_given_year_and_needs_one():
    out = parse_timestamps(pa.array(["Jun 14 15:16:01"]), "%b %d %H:%M:%S", 2019)
    assert out[0].as_py() == datetime(2019, 6, 14, 15, 16, 1)
    with pytest.raises(ValueError):
        parse_timestamps(pa.array(["Jun 14 15:16:01"]), "%b %d %H:%M:%S", None)


def test_non_matching_lines_are_not_ok():
    fmt = LoghubFormat(SYSTEMS["HDFS"]["log_format"], ts_layout="%y%m%d %H%M%S")
    parsed = fmt.parse(pa.array(["garbage", "081109 203615 148 INFO dfs.DataNode: hello"]), None)
    assert parsed.ok.to_pylist() == [False, True]
    assert parsed.content[1].as_py() == "hello"


def test_jsonl_and_logfmt():
    js = make_format("jsonl").parse(pa.array([
        '{"ts": "2023-05-01T10:00:00.123Z", "level": "warn", "logger": "a.b", "msg": "disk 91% full"}',
        "not json", '{"level": "info"}']), None)
    assert js.ok.to_pylist() == [True, False, False]
    assert js.level[0].as_py() == "WARN" and js.content[0].as_py() == "disk 91% full"
    lf = make_format("logfmt").parse(pa.array([
        'ts=2023-05-01T10:00:00.123Z level=error logger=x msg="say \\"hi\\" now" extra=1', "level=info"]), None)
    assert lf.ok.to_pylist() == [True, False]
    assert lf.content[0].as_py() == 'say "hi" now' and lf.level[0].as_py() == "ERROR"


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_header_only_capture_equals_the_whole_line_regex(system):
    """The fast path (groups on the header, content cut off) gives the fields of the whole anchored regex, also
    for trailing whitespace, lines that do not match and chunked input."""
    fmt = LoghubFormat(SYSTEMS[system]["log_format"])
    lines = (LOGHUB / f"{system}_2k.log").read_text(encoding="utf-8", errors="replace").splitlines()
    lines += [lines[0] + " \t ", lines[1] + "\r", lines[2] + " \x0b", "not a header", ""]
    raw = pa.chunked_array([lines[:1000], lines[1000:]])
    expected = pc.extract_regex(pa.array(lines), fmt.regex)
    got = fmt.extract(raw)
    assert got.is_valid().equals(expected.is_valid())
    for i in range(expected.type.num_fields):
        assert pc.filter(got.field(i), got.is_valid()).equals(pc.filter(expected.field(i), expected.is_valid()))
