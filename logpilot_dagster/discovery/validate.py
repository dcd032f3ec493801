"""The validator every candidate rule must pass, whoever proposed it (the offline proposer or an LLM).

Accepted only when the rule compiles in RE2 (linear-time matching, so no backtracking blow-up on any line),
full-matches at least 99% of the held-out samples, yields a parseable timestamp for each matched one, leaves a
non-empty content that still varies, and keeps content out of the header fields. A rejection lists every reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.ingest.formats import TS_FIELDS, HeaderFormat, RegexFormat, make_format

MIN_MATCH = 0.99
MIN_TIMESTAMP = 1.0
MIN_CONTENT = 0.99
#: A header field swallows content when more than this share of its values has more than ``MAX_FIELD_WORDS``.
MAX_WORDY_SHARE = 0.05
MAX_FIELD_WORDS = 3


@dataclass
class Candidate:
    """A proposed format rule: what goes into ``sources.yaml`` (``format``, ``ts_layout``, ``keys``)."""

    format: str
    ts_layout: str | None
    keys: dict | None = None
    proposed_by: str = "offline"
    notes: list[str] = field(default_factory=list)

    def header_format(self, timezone: str = "UTC") -> HeaderFormat:
        return make_format(self.format, self.ts_layout, timezone, self.keys)


@dataclass
class Validation:
    accepted: bool
    reasons: list[str]
    scores: dict[str, float]


def _share(mask: pa.Array, of: int) -> float:
    return (pc.sum(mask).as_py() or 0) / of if of else 0.0


def _swallowing_fields(fmt: RegexFormat, raw: pa.Array, matched: pa.Array) -> dict[str, float]:
    """Header fields (not the timestamp) whose values look like prose: too many words, or longer than the
    content itself. A ``[bracketed]`` field may hold several words, but not twice the content's length."""
    parts = pc.filter(fmt.extract(raw), matched)
    content_len = pc.mean(pc.utf8_length(pc.struct_field(parts, "Content"))).as_py() or 0.0
    out = {}
    for name in fmt.fields:
        if name == "Content" or name in TS_FIELDS:
            continue
        values = pc.drop_null(pc.struct_field(parts, name))
        if not len(values):
            continue
        words = pc.list_value_length(pc.utf8_split_whitespace(pc.utf8_trim_whitespace(values)))
        wordy = _share(pc.greater(words, MAX_FIELD_WORDS), len(values))
        mean_len = pc.mean(pc.utf8_length(values)).as_py() or 0.0
        if f"\\[(?P<{name}>" in fmt.regex:
            if mean_len > 2 * content_len and mean_len > 16:
                out[name] = round(wordy, 4)
        elif wordy > MAX_WORDY_SHARE or (mean_len > content_len and mean_len > 16):
            out[name] = round(wordy, 4)
    return out


def validate(candidate: Candidate, held_out: list[str], year: int | None = None) -> Validation:
    """Score ``candidate`` on ``held_out`` lines (never the ones it was proposed from)."""
    reasons: list[str] = []
    scores: dict[str, float] = {"samples": float(len(held_out))}
    if not held_out:
        return Validation(False, ["no held-out samples to validate on"], scores)
    try:
        fmt = candidate.header_format()
    except Exception as exc:  # pyarrow.ArrowInvalid for RE2, ValueError for a rule without Content
        return Validation(False, [f"does not compile in RE2: {exc}"], scores)
    raw = pa.array(held_out, pa.string())
    try:
        parsed = fmt.parse(raw, year or 2000)
    except Exception as exc:
        return Validation(False, [f"cannot parse with this rule: {exc}"], scores)
    n = len(held_out)
    matched = pc.fill_null(pc.is_valid(parsed.content), False)
    n_matched = pc.sum(matched).as_py() or 0
    scores["match_rate"] = round(n_matched / n, 4)
    if scores["match_rate"] < MIN_MATCH:
        reasons.append(f"full-matches {scores['match_rate']:.1%} of held-out samples (< {MIN_MATCH:.0%})")
    ts_ok = pc.and_(matched, pc.fill_null(pc.is_valid(parsed.ts), False))
    scores["timestamp_rate"] = round(_share(ts_ok, n_matched), 4)
    if n_matched and scores["timestamp_rate"] < MIN_TIMESTAMP:
        reasons.append(f"timestamp parses on {scores['timestamp_rate']:.1%} of matched samples "
                       f"(layout {candidate.ts_layout!r})")
    content = pc.filter(parsed.content, matched)
    nonempty = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(content)), 0)
    scores["content_rate"] = round(_share(nonempty, n_matched), 4)
    if n_matched and scores["content_rate"] < MIN_CONTENT:
        reasons.append(f"content is empty on {1 - scores['content_rate']:.1%} of matched samples")
    distinct = len(pc.unique(content)) if n_matched else 0
    scores["distinct_content"] = float(distinct)
    if n_matched >= 10 and distinct < 2:
        reasons.append("content never varies: the header swallowed the message")
    if isinstance(fmt, RegexFormat) and n_matched:
        swallowing = _swallowing_fields(fmt, raw, matched)
        for name, wordy in swallowing.items():
            reasons.append(f"header field {name!r} swallows content ({wordy:.1%} of its values have more than "
                           f"{MAX_FIELD_WORDS} words, or it is longer than the content)")
        scores["swallowing_fields"] = float(len(swallowing))
    return Validation(not reasons, reasons, scores)
