"""Template quality on Loghub-2k (https://github.com/logpai/loghub, corrected ground truth from
https://github.com/logpai/logparser): grouping accuracy (GA), F1 grouping accuracy (FGA) and parsing accuracy
(PA) per system, for three miners, each labelled for what it is:

- ``LogPilot one config``: the project's line pipeline end to end from the raw ``.log`` lines, with the rule that
  schema discovery proposes for each system (no ``formats.json``), PII masking, and the **default** mining
  configuration for every system (no per-dataset threshold, depth, masks or switches);
- ``Drain3 defaults``: ``drain3.TemplateMiner()`` as shipped (sim_th 0.4, depth 4, no masks) on the ground-truth
  ``Content`` of each line;
- ``Drain3 tuned``: Drain3 with the Drain paper's per-dataset settings from ``formats.json`` (similarity
  threshold, depth, regex masks), on the ground-truth ``Content``.

GA: a line is right when its predicted group holds exactly the lines of its true group. FGA: F1 of the share of
predicted groups that equal a true group (precision) and of true groups that are found (recall). PA: a line is
right when its predicted template equals the ground-truth ``EventTemplate`` (runs of ``<*>`` collapsed,
whitespace normalised).

    uv run python benchmarks/bench_templates.py [System ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_discovery import SYSTEMS, raw_lines  # noqa: E402
from loghub import f1_grouping_accuracy, grouping_accuracy, ground_truth, parsing_accuracy, systems  # noqa: E402

from logpilot_dagster.discovery.propose import discover  # noqa: E402
from logpilot_dagster.ingest.registry import SchemaRegistry  # noqa: E402
from logpilot_dagster.ingest.sources import SourceSpec  # noqa: E402
from logpilot_dagster.ingest.transform import LineTransformer  # noqa: E402


def logpilot(name: str, lines: list[str] | None = None) -> tuple[list[str], list[str], float]:
    """Group ids and templates per line from the project's pipeline with the default mining configuration:
    the rule discovery proposes for the raw lines, header parsing, PII masking, mining."""
    lines = raw_lines(name) if lines is None else lines
    found = discover(lines, 2000)
    spec = SourceSpec(name=name, glob=f"{name}/**", service=name, format=found.candidate.format,
                      ts_layout=found.candidate.ts_layout, keys=found.candidate.keys)
    registry = SchemaRegistry(sources={name: spec})
    table = pa.table({"source": [f"{name}.log"] * len(lines), "source_offset": list(range(len(lines))),
                      "raw": lines})
    start = time.perf_counter()
    out = LineTransformer(registry).transform(name, table, 2000)
    seconds = time.perf_counter() - start
    miner = registry.miner(name)
    texts = miner.templates()
    by_offset = dict(zip(out.rows.column("source_offset").to_pylist(), out.rows.column("template_id").to_pylist()))
    ids = [miner.aliases.get(by_offset[i], by_offset[i]) if i in by_offset else f"unparsed:{i}"
           for i in range(len(lines))]
    return ids, [texts.get(i, "") for i in ids], seconds


def drain3(contents: list[str], settings: dict | None) -> tuple[list[str], list[str], float]:
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.profiling_enabled = False
    if settings:
        config.drain_sim_th = settings["drain_similarity_threshold"]
        config.drain_depth = settings["drain_depth"]
        config.masking_instructions = [MaskingInstruction(m, "*") for m in settings["drain_masks"]]
    miner = TemplateMiner(config=config)
    start = time.perf_counter()
    ids = [miner.add_log_message(c)["cluster_id"] for c in contents]
    seconds = time.perf_counter() - start
    clusters = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    return [str(i) for i in ids], [clusters[i] for i in ids], seconds


def main(names: list[str]) -> None:
    tuned = systems()
    labels = ("LogPilot one config", "Drain3 defaults", "Drain3 tuned")
    totals = {label: [0.0, 0.0, 0.0, 0.0, 0] for label in labels}
    print(f"{'system':<12}" + "".join(f" | {label:^22}" for label in labels))
    print(f"{'':<12}" + " | {:>6} {:>6} {:>6}  ".format("GA", "FGA", "PA") * len(labels))
    for name in names or SYSTEMS:
        rows = ground_truth(name)
        truth_ids, truth_templates = [r["EventId"] for r in rows], [r["EventTemplate"] for r in rows]
        contents = [r["Content"] for r in rows]
        runs = {labels[0]: logpilot(name), labels[1]: drain3(contents, None), labels[2]: drain3(contents, tuned[name])}
        cells = []
        for label, (ids, templates, seconds) in runs.items():
            scores = (grouping_accuracy(truth_ids, ids), f1_grouping_accuracy(truth_ids, ids),
                      parsing_accuracy(truth_templates, templates))
            for k, v in enumerate(scores):
                totals[label][k] += v
            totals[label][3] += seconds
            totals[label][4] += len(ids)
            cells.append(" | {:>6.3f} {:>6.3f} {:>6.3f}  ".format(*scores))
        print(f"{name:<12}" + "".join(cells))
    n = len(names or SYSTEMS)
    print(f"{'mean':<12}" + "".join(" | {:>6.3f} {:>6.3f} {:>6.3f}  ".format(*(t[k] / n for k in range(3)))
                                    for t in totals.values()))
    print("lines/s: " + ", ".join(f"{label} {t[4] / t[3]:,.0f}" for label, t in totals.items())
          + "  (LogPilot: header parse + PII masking + mining per 2k-line batch, fixed costs included; Drain3: add_log_message on Content)")


if __name__ == "__main__":
    main(sys.argv[1:])
