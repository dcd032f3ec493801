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

import pyarrow as pa
import pyarrow.compute as pc
from drain3.drain import Drain

from logpilot_dagster.privacy.pii import MASKED_VALUE

WILDCARD = "<*>"
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
        for template in self.seed:
            cluster, _ = self.drain.add_log_message(template)
            self.cluster_ids[cluster.cluster_id] = template_id(self.service, cluster.get_template())

    def _current_id(self, cluster) -> str:
        """The cluster's id for its current template, recording the previous id as an alias when it changed."""
        new_id = template_id(self.service, cluster.get_template())
        old_id = self.cluster_ids.get(cluster.cluster_id)
        if old_id is not None and old_id != new_id:
            self.aliases[old_id] = new_id
            for alias, target in list(self.aliases.items()):
                if target == old_id:
                    self.aliases[alias] = new_id
        self.cluster_ids[cluster.cluster_id] = new_id
        return new_id

    def mine_keys(self, keys: list[str], counts: list[int] | None = None) -> list[str]:
        """Add distinct masked messages; return the final template id of each (same order)."""
        clusters = []
        for i, key in enumerate(keys):
            cluster, _ = self.drain.add_log_message(key)
            clusters.append(cluster)
            cid = cluster.cluster_id
            self.counts[cid] = self.counts.get(cid, 0) + (counts[i] if counts else 1)
        return [self._current_id(c) for c in clusters]

    def assign(self, messages: pa.Array, match_first: bool = False) -> pa.Array:
        """Template id per line for a column of (PII-masked) messages; Drain sees each distinct key once.

        With ``match_first`` (the live path) a key that matches a known template keeps that template unchanged;
        only unknown keys are mined.
        """
        keys = mining_keys(messages, self.config.pattern)
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        encoded = pc.dictionary_encode(keys)
        uniq = encoded.dictionary.to_pylist()
        freq = pc.value_counts(encoded.indices)
        per_index = dict(zip(freq.field("values").to_pylist(), freq.field("counts").to_pylist()))
        counts = [per_index.get(i, 0) for i in range(len(uniq))]
        ids: list[str | None] = [None] * len(uniq)
        if match_first:
            for i, key in enumerate(uniq):
                cluster = self.drain.match(key, full_search_strategy="fallback")
                if cluster is not None and cluster.cluster_id in self.cluster_ids:
                    ids[i] = self.cluster_ids[cluster.cluster_id]
                    self.counts[cluster.cluster_id] = self.counts.get(cluster.cluster_id, 0) + counts[i]
        todo = [i for i, tid in enumerate(ids) if tid is None]
        for i, tid in zip(todo, self.mine_keys([uniq[i] for i in todo], [counts[i] for i in todo])):
            ids[i] = tid
        return pc.take(pa.array(ids, pa.string()), encoded.indices)

    def templates(self) -> dict[str, str]:
        """Current template text by id."""
        return {self.cluster_ids[c.cluster_id]: c.get_template() for c in self.drain.clusters
                if c.cluster_id in self.cluster_ids}
