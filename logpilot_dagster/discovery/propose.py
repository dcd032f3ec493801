"""Discovery for one unknown source: split its samples, propose candidates from one half, validate them on the
other half, and keep the first accepted one (or report why each was rejected)."""

from __future__ import annotations

from dataclasses import dataclass, field

from logpilot_dagster.discovery.header import propose_header
from logpilot_dagster.discovery.structured import propose_structured
from logpilot_dagster.discovery.validate import Candidate, Validation, validate
from logpilot_dagster.ingest.formats import REGEX_PREFIX

MIN_SAMPLES = 20


def offline_candidates(lines: list[str]) -> list[Candidate]:
    """What the offline proposers make of ``lines``: a JSON-lines / logfmt decoder, else a header regex."""
    structured = propose_structured(lines)
    if structured is not None:
        return [Candidate(structured.kind, structured.ts_layout, structured.keys, "offline:structured",
                          structured.notes)]
    header = propose_header(lines)
    if header is None or header.ts_layout is None:
        return []
    return [Candidate(REGEX_PREFIX + header.regex, header.ts_layout, None, "offline:header", header.notes)]


@dataclass
class Discovery:
    candidate: Candidate | None
    validation: Validation | None
    rejected: list[tuple[Candidate, Validation]] = field(default_factory=list)
    samples: int = 0

    @property
    def accepted(self) -> bool:
        return self.validation is not None and self.validation.accepted

    def explain(self) -> str:
        if self.samples < MIN_SAMPLES:
            return f"only {self.samples} samples (need {MIN_SAMPLES})"
        if self.accepted:
            return "accepted"
        if not self.rejected:
            return "no candidate: no known timestamp layout or structure fits these samples"
        return "; ".join(r for _, v in self.rejected for r in v.reasons)


def split_samples(lines: list[str]) -> tuple[list[str], list[str]]:
    """Interleaved halves: proposals come from one, validation uses the other (held out)."""
    return lines[0::2], lines[1::2]


def discover(lines: list[str], year: int | None = None, extra: list[Candidate] | None = None) -> Discovery:
    """Propose from half of ``lines``, validate on the other half; ``extra`` candidates (e.g. from an LLM) pass
    the same validator after the offline ones."""
    lines = [line for line in lines if line.strip()]
    if len(lines) < MIN_SAMPLES:
        return Discovery(None, None, samples=len(lines))
    proposal_half, held_out = split_samples(lines)
    result = Discovery(None, None, samples=len(lines))
    for candidate in offline_candidates(proposal_half) + list(extra or []):
        validation = validate(candidate, held_out, year)
        if validation.accepted:
            result.candidate, result.validation = candidate, validation
            return result
        result.rejected.append((candidate, validation))
    if result.rejected:
        result.candidate, result.validation = result.rejected[0]
    return result
