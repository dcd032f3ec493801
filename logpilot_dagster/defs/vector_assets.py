"""The agent's search indexes in Chroma: log templates and the runbook knowledge base."""

import hashlib
import time

import dagster as dg

from logpilot_dagster.defs.automation import after_checks_when_inputs_change
from logpilot_dagster.defs.resources import LogPilotHome
from logpilot_dagster.storage.warehouse import connect


@dg.asset(group_name="search", kinds={"chromadb"}, deps=["logs_table"],
          automation_condition=after_checks_when_inputs_change())
def template_vectors(logpilot: LogPilotHome) -> dg.MaterializeResult:
    """Every template in `templates` embedded (MiniLM int8, offline) into the Chroma `log_templates`
    collection; only new or changed templates are embedded again."""
    start = time.perf_counter()
    from logpilot_dagster.knowledge.vectors import sync_template_vectors  # chromadb: imported only by runs that need it

    paths = logpilot.paths
    with connect(paths.db_path, read_only=True) as con:
        cur = con.execute("SELECT template_id, template, service, count, first_seen, last_seen FROM templates "
                          "ORDER BY template_id")
        cols = [d[0] for d in cur.description]
        templates = [dict(zip(cols, row)) for row in cur.fetchall()]
    stats = sync_template_vectors(templates, paths.chroma_dir, prune=True)
    texts = hashlib.sha256("\n".join(f"{t['template_id']}\t{t['template']}" for t in templates).encode())
    return dg.MaterializeResult(
        data_version=dg.DataVersion(texts.hexdigest()[:16]),  # counts alone changing does not re-index runbooks
        metadata={**{k: v for k, v in stats.items() if k != "seconds"}, "templates": len(templates),
                  "dagster/row_count": len(templates), "embed_seconds": round(stats["seconds"], 2),
                  "seconds": round(time.perf_counter() - start, 2)})


@dg.asset(group_name="search", kinds={"chromadb", "llamaindex"}, deps=[template_vectors],
          automation_condition=after_checks_when_inputs_change())
def runbook_index(logpilot: LogPilotHome) -> dg.MaterializeResult:
    """Runbooks (markdown, chunked by heading) indexed with LlamaIndex into the Chroma `runbooks` collection;
    unchanged files are skipped."""
    start = time.perf_counter()
    from logpilot_dagster.knowledge.knowledge_base import KnowledgeBase  # llama-index: only in runs that need it

    paths = logpilot.paths
    stats = KnowledgeBase(paths.chroma_dir, paths.runbooks_dir).build()
    return dg.MaterializeResult(metadata={**stats, "runbooks_dir": str(paths.runbooks_dir),
                                          "seconds": round(time.perf_counter() - start, 2)})
