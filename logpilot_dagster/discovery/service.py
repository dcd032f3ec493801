"""Discovery end to end for one target: gather samples, propose and validate, and optionally record the
proposal or accept it into the registry. Used by ``logpilot discover`` and the live discovery job."""

from __future__ import annotations

from dataclasses import dataclass

from logpilot_dagster.discovery import rules
from logpilot_dagster.discovery.llm_proposer import proposer_from_env
from logpilot_dagster.discovery.propose import Discovery, Proposer, discover
from logpilot_dagster.discovery.samples import DEFAULT_SAMPLES, Samples, gather
from logpilot_dagster.ingest.sources import SourceSpec
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect


@dataclass
class Outcome:
    samples: Samples
    found: Discovery
    spec: SourceSpec | None
    rule_id: str | None = None

    def report(self) -> str:
        found, s = self.found, self.samples
        lines = [f"source   {s.name}  (glob {s.glob!r}; {len(s.lines)} samples from {s.origin}; "
                 f"proposed from half, validated on the other half)"]
        if found.candidate:
            c = found.candidate
            lines += [f"format   {c.format}", f"layout   {c.ts_layout}", f"by       {c.proposed_by}"]
            if c.keys:
                lines.append(f"keys     {c.keys}")
            lines += [f"note     {n}" for n in c.notes]
        if found.validation:
            lines.append("scores   " + "  ".join(f"{k}={v:g}" for k, v in found.validation.scores.items()))
        lines.append("verdict  " + ("ACCEPTED by the validator" if found.accepted else f"REJECTED: {found.explain()}"))
        if found.accepted:
            lines += [f"also     {c.proposed_by} REJECTED: {'; '.join(v.reasons)}" for c, v in found.rejected]
        if self.rule_id:
            lines.append(f"rule     {self.rule_id}")
        return "\n".join(lines)


def run_discovery(paths: LogPilotPaths, target: str, samples: int = DEFAULT_SAMPLES, name: str | None = None,
                  accept_by: str | None = None, record_proposal: bool = False,
                  proposer: Proposer | None = None) -> Outcome:
    """Discover a rule for ``target``; ``accept_by`` accepts it when it validates (``record_proposal`` keeps a
    rejected or unaccepted one as a ``proposed`` version, for a person to review). ``proposer`` defaults to
    the LLM when ``LOGPILOT_LLM_*`` configure one, else discovery is offline only."""
    gathered = gather(paths, target, samples, name)
    found = discover(gathered.lines, gathered.year, proposer or proposer_from_env())
    spec = rules.spec_for(found, gathered.name, gathered.glob) if found.candidate else None
    outcome = Outcome(gathered, found, spec)
    if spec is not None and accept_by and found.accepted:
        outcome.rule_id = rules.accept(paths, spec, found, accept_by)
    elif spec is not None and record_proposal:
        with connect(paths.db_path) as con:
            outcome.rule_id = rules.record(con, spec, found, "proposed")
    return outcome
