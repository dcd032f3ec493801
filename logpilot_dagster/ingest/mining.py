"""Template mining with stable ids: vectorised variable masking, one Drain3 pass per distinct message.

The hot path never feeds Drain every line. Variables (numbers, hex, ids, addresses) are masked for the whole
Arrow column at once, the column is dictionary-encoded, and Drain sees each distinct masked message once; the
template ids are then mapped back to all lines. Grouping is unchanged: Drain's result for a message does not
depend on how often it was seen, only on first-appearance order, which ``pc.unique`` keeps.

A template id is a hash of (service, template text), so the same shape gets the same id in any run or shard.
When Drain generalises a template (a token becomes ``<*>``) the old id is recorded as an alias of the new one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from drain3.drain import Drain

from logpilot_dagster.ingest import template_text
from logpilot_dagster.ingest.formats import arrow_sql
from logpilot_dagster.ingest.template_text import WILDCARD, TemplateTexts, split_text
from logpilot_dagster.privacy.pii import MASKED_VALUE

#: PII placeholders and pseudonym tokens are variables too: mining sees them as wildcards, so a template never
#: holds a per-person token (the stored message and its params keep it).
PII_PLACEHOLDERS = MASKED_VALUE
#: Generic variable shapes (RE2 and Python compatible), applied after PII masking, before mining.
GENERIC_MASKS = (
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",  # UUID
    # a date-time inside the message is one variable: "Sun Jul 10 03:55:22 2005", "2016-09-28 04:30:30"
    r"\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} "
    r"\d{1,2}:\d{2}:\d{2}(?: \d{4})?|\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?",
    r"\b(?:true|false|null)\b",  # boolean and null values
    # word-ish tokens with a digit that look variable: starting with a digit, with a digit next to a separator
    # (addresses, versions, paths with ids) or with three or more digits; names such as SOCKS5 or jk2_init stay
    r"\b\d[\w.:/-]*|[\w.:/-]*(?:\d[.:/-]|[.:/-]\d)[\w.:/-]*|[\w.:/-]*\d[\w.:/-]*\d[\w.:/-]*\d[\w.:/-]*",
)


def combine(patterns: tuple[str, ...] | list[str]) -> str | None:
    return "|".join(f"(?:{p})" for p in patterns) if patterns else None


@dataclass
class MinerConfig:
    """Drain settings for one service. The defaults are the one configuration every source gets (measured on
    Loghub-2k by ``benchmarks/bench_templates.py``); a declaration may still override them."""

    sim_th: float = 0.7
    depth: int = 5
    masks: tuple[str, ...] = ()
    generic_masks: bool = True
    wildcard_aware: bool = True  # False: plain Drain similarity (what Loghub's per-dataset settings were tuned for)

    @property
    def pattern(self) -> str | None:
        return combine((PII_PLACEHOLDERS,) + tuple(self.masks) + (GENERIC_MASKS if self.generic_masks else ()))


class WildcardAwareDrain(Drain):
    """Drain whose similarity ignores positions where template and message both hold a wildcard: it is the
    share of equal tokens among the positions that are not variable on both sides, so masked variables do not
    dilute the similarity of the words around them (plain Drain counts such positions as mismatches)."""

    def get_seq_distance(self, seq1, seq2, include_params: bool):
        sim, params = super().get_seq_distance(seq1, seq2, include_params)
        if include_params or not seq1:
            return sim, params
        shared = sum(1 for t1, t2 in zip(seq1, seq2) if t1 == t2 == self.param_str)
        literal = len(seq1) - shared
        return (sim * len(seq1) / literal if literal else 1.0), params


def template_id(service: str, template: str) -> str:
    """Deterministic id of a template shape within a service."""
    return hashlib.sha1(f"{service}\x1f{template}".encode()).hexdigest()[:16]


def mining_keys(messages: pa.Array, pattern: str | None) -> pa.Array:
    """Mask variables in a whole column (RE2, vectorised)."""
    if pattern is None:
        return messages
    return pc.replace_substring_regex(messages, pattern, WILDCARD)


@dataclass
class ServiceMiner:
    """Drain3 for one service, seeded with the registry's known templates; hands out stable ids."""

    service: str
    config: MinerConfig = field(default_factory=MinerConfig)
    seed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        drain = WildcardAwareDrain if self.config.wildcard_aware else Drain
        self.drain = drain(depth=self.config.depth, sim_th=self.config.sim_th, max_children=100, param_str=WILDCARD)
        self.cluster_ids: dict[int, str] = {}
        self.aliases: dict[str, str] = {}
        self.counts: dict[int, int] = {}
        self.texts = TemplateTexts()
        for template in self.seed:
            cluster, _ = self.drain.add_log_message(template)
            self.texts.observe(cluster, *split_text(template))
            self.cluster_ids[cluster.cluster_id] = template_id(self.service, self.texts.text(cluster))

    def _current_id(self, cluster) -> str:
        """The cluster's id for its current template, recording the previous id as an alias when it changed."""
        new_id = template_id(self.service, self.texts.text(cluster))
        old_id = self.cluster_ids.get(cluster.cluster_id)
        if old_id is not None and old_id != new_id:
            self.aliases[old_id] = new_id
            for alias, target in list(self.aliases.items()):
                if target == old_id:
                    self.aliases[alias] = new_id
        self.cluster_ids[cluster.cluster_id] = new_id
        return new_id

    def mine_keys(self, keys: list[str], counts: list[int] | None = None,
                  values: list[tuple[list[str], list[str], list[str]]] | None = None) -> list[str]:
        """Add distinct masked messages; return the final template id of each (same order). ``values``: the
        (gaps, token values, key tokens) of a message behind each key, that the template text is written from (default: the key)."""
        return [self._current_id(c) for c in self._add(keys, counts, values)]

    def _add(self, keys, counts=None, values=None) -> list:
        clusters = []
        for i, key in enumerate(keys):
            cluster, _ = self.drain.add_log_message(key)
            self.texts.observe(cluster, *(values[i] if values else split_text(key)))
            clusters.append(cluster)
            cid = cluster.cluster_id
            self.counts[cid] = self.counts.get(cid, 0) + (counts[i] if counts else 1)
        return clusters

    def assign(self, messages: pa.Array, match_first: bool = False) -> "Assigned":
        """Template id and params per line for a column of (PII-masked) messages; Drain sees each distinct key
        once, and the template text is written from the first message of each key.

        With ``match_first`` (the live path) a key that matches a known template keeps that template unchanged;
        only unknown keys are mined. A message that does not fit its template's text widens it (up to
        ``WIDEN_ROUNDS`` times; then its params are ``[NULL, message]``, counted in ``unfitted``).
        """
        pattern = self.config.pattern
        keys = mining_keys(messages, pattern)
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        if isinstance(messages, pa.ChunkedArray):
            messages = messages.combine_chunks()
        encoded = pc.dictionary_encode(keys)
        uniq = encoded.dictionary.to_pylist()
        rows = encoded.indices.to_numpy(zero_copy_only=False)
        first = np.unique(rows, return_index=True)[1]
        counts = np.bincount(rows, minlength=len(uniq)).tolist()
        clusters: list = [None] * len(uniq)
        if match_first:
            for i, key in enumerate(uniq):
                cluster = self.drain.match(key, full_search_strategy="fallback")
                if cluster is not None and cluster.cluster_id in self.cluster_ids:
                    clusters[i] = cluster
                    self.counts[cluster.cluster_id] = self.counts.get(cluster.cluster_id, 0) + counts[i]
        todo = [i for i, c in enumerate(clusters) if c is None]
        found = mask_values(messages.take(pa.array(first[todo], pa.int64())), pattern)
        values = [template_text.token_values(uniq[i], v) for i, v in zip(todo, found)]
        for i, cluster in zip(todo, self._add([uniq[i] for i in todo], [counts[i] for i in todo], values)):
            clusters[i] = cluster
        ids = [self._current_id(c) for c in clusters]
        texts = pa.array([self.texts.text(c) for c in clusters], pa.string())
        params = template_text.extract_params(messages, texts.take(encoded.indices))
        for _ in range(WIDEN_ROUNDS):
            misfits = np.flatnonzero(pc.is_null(params).to_numpy(zero_copy_only=False))
            if not len(misfits):
                break
            widened = self._widen(messages, rows, misfits, uniq, clusters, pattern)
            ids = [self._current_id(c) for c in clusters]
            texts = pa.array([self.texts.text(c) for c in clusters], pa.string())
            redo = np.flatnonzero(np.isin(rows, widened))
            again = template_text.extract_params(messages.take(pa.array(redo)), texts.take(pa.array(rows[redo])))
            mask = np.zeros(len(rows), bool)
            mask[redo] = True
            positions = np.cumsum(mask) - 1
            params = pc.if_else(pa.array(mask), again.take(pa.array(np.where(mask, positions, 0))), params)
        misfit = pc.sum(pc.is_null(params)).as_py() or 0
        return Assigned(pc.take(pa.array(ids, pa.string()), encoded.indices),
                        template_text.unfitted(messages, params), misfit)

    def _widen(self, messages, rows, misfits, uniq, clusters, pattern) -> list[int]:
        """Observe the messages that do not fit their template text (one per key); the keys whose clusters
        changed (all keys of those clusters)."""
        seen: dict[int, int] = {}
        for r in misfits.tolist():
            seen.setdefault(int(rows[r]), r)
        found = mask_values(messages.take(pa.array(list(seen.values()), pa.int64())), pattern)
        changed = set()
        for (u, _), v in zip(seen.items(), found):
            self.texts.observe(clusters[u], *template_text.token_values(uniq[u], v))
            changed.add(clusters[u].cluster_id)
        return [u for u, c in enumerate(clusters) if c.cluster_id in changed]

    def templates(self) -> dict[str, str]:
        """Current template text by id."""
        return {self.cluster_ids[c.cluster_id]: self.texts.text(c) for c in self.drain.clusters
                if c.cluster_id in self.cluster_ids}


#: How often one batch may widen template texts for messages that do not fit them.
WIDEN_ROUNDS = 3


@dataclass
class Assigned:
    """Template ids and params of a batch of messages; ``unfitted`` messages keep ``[NULL, message]``."""

    ids: pa.Array
    params: pa.Array
    unfitted: int


def mask_values(messages: pa.Array, pattern: str | None) -> list[list[str]]:
    """The matches of the variable masks in each message, in order (what each ``<*>`` of its key replaced)."""
    if pattern is None or len(messages) == 0:
        return [[] for _ in range(len(messages))]
    out = arrow_sql("SELECT regexp_extract_all(m, ?) AS p FROM t", [pattern], m=messages)
    return out.column(0).to_pylist()
