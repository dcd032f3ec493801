"""Discovery for one unknown source: split its samples, propose candidates from one half (offline, plus an
optional extra proposer such as the LLM), validate every one on the other half, and keep the best accepted one
(or report why each was rejected)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from logpilot_dagster.discovery.header import propose_header
from logpilot_dagster.discovery.structured import propose_structured
from logpilot_dagster.discovery.validate import Candidate, Validation, validate
from logpilot_dagster.ingest.formats import REGEX_PREFIX

MIN_SAMPLES = 20
#: Proposes candidates from the proposal half of the samples (e.g. ``llm_proposer.LLMProposer``).
Proposer = Callable[[list[str]], list[Candidate]]


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


def _rank(validation: Validation) -> tuple[float, ...]:
    scores = validation.scores
    return scores.get("match_rate", 0.0), scores.get("timestamp_rate", 0.0), scores.get("content_rate", 0.0)


def discover(lines: list[str], year: int | None = None, proposer: Proposer | None = None) -> Discovery:
    """Propose from half of ``lines``, validate on the other half. ``proposer``'s candidates (made from the same
    half) pass the same validator as the offline ones; the accepted candidate with the best match, timestamp
    and content rates wins, the offline one on a tie."""
    lines = [line for line in lines if line.strip()]
    if len(lines) < MIN_SAMPLES:
        return Discovery(None, None, samples=len(lines))
    proposal_half, held_out = split_samples(lines)
    result = Discovery(None, None, samples=len(lines))
    candidates = offline_candidates(proposal_half) + (proposer(proposal_half) if proposer else [])
    accepted: list[tuple[Candidate, Validation]] = []
    for candidate in candidates:
        validation = validate(candidate, held_out, year)
        (accepted if validation.accepted else result.rejected).append((candidate, validation))
    best = max(accepted, key=lambda pair: _rank(pair[1]), default=None) or next(iter(result.rejected), None)
    if best is not None:
        result.candidate, result.validation = best
    return result
