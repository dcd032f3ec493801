"""PIIMasker against a hand-labelled corpus, plus the vectorised path's equivalence with the per-line one."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from logpilot_dagster.privacy.pii import MASKED_VALUE, PLACEHOLDERS, PIIMasker
from logpilot_dagster.privacy.pseudonym import PSEUDONYMIZE, PseudonymKeys

CORPUS = [json.loads(line) for line in (Path(__file__).parent / "data" / "pii_corpus.jsonl").read_text().splitlines()]
MASKER = PIIMasker()


def test_corpus_lines_are_masked_exactly():
    got = [MASKER.mask(row["text"]) for row in CORPUS]
    wrong = [(row["text"], row["expected"], out) for row, out in zip(CORPUS, got) if out != row["expected"]]
    assert wrong == []


@pytest.mark.parametrize("kind", sorted(PLACEHOLDERS))
def test_precision_and_recall_per_kind(kind):
    placeholder = PLACEHOLDERS[kind]
    tp = fp = fn = 0
    for row in CORPUS:
        expected, got = row["expected"].count(placeholder), MASKER.mask(row["text"]).count(placeholder)
        tp, fp, fn = tp + min(expected, got), fp + max(got - expected, 0), fn + max(expected - got, 0)
    assert tp >= 15, f"corpus has too few {kind} positives to measure"
    assert tp / (tp + fp) >= 0.98
    assert tp / (tp + fn) >= 0.98


def test_stats_count_each_kind():
    stats = Counter()
    MASKER.mask("a@example.com b@example.org 10.0.0.1 4111 1111 1111 1111 123-45-6789 version 1.2.3.4.5", stats)
    MASKER.mask("from 10.0.0.2:22", stats)
    assert stats == Counter(email=2, ip=2, credit_card=1, ssn=1)
    MASKER.mask("ops@mailhost fe80::1 SSN 219099997 Chrome/120.0.0.0", stats)
    assert stats == Counter(email=3, ip=2, credit_card=1, ssn=2, ipv6=1)


def test_mask_array_equals_mask_row_by_row_with_nulls_and_chunks():
    texts = [row["text"] for row in CORPUS] + [None, "", None]
    chunked = pa.chunked_array([texts[:50], texts[50:120], texts[120:]], type=pa.large_string())
    array_stats, row_stats = Counter(), Counter()

    out = MASKER.mask_array(chunked, array_stats)

    assert out.type == pa.large_string()
    assert out.to_pylist() == [None if t is None else MASKER.mask(t, row_stats) for t in texts]
    assert array_stats == row_stats
    assert sum(array_stats.values()) > 0


def test_mask_array_without_candidates_returns_values_unchanged():
    plain = pa.array(["checkout completed in 842 ms", None, "502 bad gateway"])
    assert MASKER.mask_array(plain).to_pylist() == plain.to_pylist()
    assert MASKER.mask_array(pa.array([], pa.string())).to_pylist() == []


def test_mask_array_equals_mask_on_random_near_miss_text():
    """The RE2 prefilter must never skip a row that the exact patterns would change, and the RE2 masking of
    emails and IPs must agree with the exact patterns, also for items that directly follow each other."""
    rng = random.Random(20240115)
    pieces = ["4", "1", "5", "3", "0", "9", "12", "255", "4111", " ", "-", ".", ":", "@", "a", "x.com", "_", "=", "/",
              "%", "+", ",", ">", "..", "a@b.co", "10.0.0.1", "123-45-6789", "4111 1111 1111 1111",
              # the exact-row cases: IDN, full-width and URL-encoded emails, dotless hosts, versions, IPv6, SSN labels
              "ö", "\ufffd", "\uff20", "%40", "mailhost", "b\u00fccher.de", "Chrome/", "version ", "curl/", "::",
              "fe80::1", "ff", "2001:db8::", "ssn ", "SSN:", "219099997", "219 09 9998", "010.020.030.040", "[", "]"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 40))) for _ in range(20_000)]
    texts += [".".join(str(rng.randint(0, 300)) for _ in range(rng.randint(3, 5))) for _ in range(2_000)]

    array_stats, row_stats = Counter(), Counter()
    assert MASKER.mask_array(pa.array(texts), array_stats).to_pylist() == [MASKER.mask(t, row_stats) for t in texts]
    assert array_stats == row_stats
    assert all(array_stats[kind] for kind in PLACEHOLDERS)  # every kind was exercised


@pytest.mark.timeout(10)
@pytest.mark.parametrize("group", ["1234", "12"])
def test_long_digit_runs_are_scanned_in_linear_time(group):
    long_run = " ".join([group] * 50_000) + " x"
    assert MASKER.mask(long_run) == long_run


PSEUDONYMS = PIIMasker(PSEUDONYMIZE, PseudonymKeys((b"test-key",)))


def test_pseudonymize_gives_one_keyed_token_per_value():
    out = PSEUDONYMS.mask("a Bob@X.com b bob@x.com c eve@x.com d 010.0.0.1 e 10.0.0.1 f fe80::1 g 4111 1111 1111 1111")
    tokens = re.findall(MASKED_VALUE, out)
    assert len(tokens) == 7 and "@" not in out and "4111" not in out
    assert tokens[0] == tokens[1] != tokens[2] and tokens[3] == tokens[4]  # normalised: case, leading zeros
    assert tokens[0] == PseudonymKeys((b"test-key",)).token("email", "bob@x.com") and tokens[0].startswith("<EMAIL:")
    assert [t.split(":")[0] for t in tokens[5:]] == ["<IPV6", "<CC"]
    assert PIIMasker(PSEUDONYMIZE, PseudonymKeys((b"other-key",))).mask("bob@x.com") != tokens[0]


def test_pseudonymize_column_path_equals_per_line_path():
    texts = [row["text"] for row in CORPUS] + [None, ""]
    array_stats, row_stats = Counter(), Counter()
    out = PSEUDONYMS.mask_array(pa.array(texts), array_stats).to_pylist()
    assert out == [None if t is None else PSEUDONYMS.mask(t, row_stats) for t in texts]
    assert array_stats == row_stats
    redacted = [MASKER.mask(t) for t in texts if t is not None]
    assert [re.sub(MASKED_VALUE, "#", t) for t in out if t is not None] == [re.sub(MASKED_VALUE, "#", t) for t in redacted]
