"""Template mining with stable ids: vectorised variable masking, one Drain3 pass per distinct message.

The hot path never feeds Drain every line. Variables (numbers, hex, ids, addresses) are masked for the whole
Arrow column at once, the column is dictionary-encoded, and Drain sees each distinct masked message once; the
template ids are then mapped back to all lines. Grouping is unchanged: Drain's result for a message does not
depend on how often it was seen, only on first-appearance order, which ``pc.unique`` keeps.

A template id is a hash of (service, template text), so the same shape gets the same id in any run or shard.
A Drain cluster keeps one template per value of a position that has held only a few name-like tokens; when a
position becomes a variable the old ids are recorded as aliases of the new one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from drain3.drain import Drain

from logpilot_dagster.ingest import template_text
from logpilot_dagster.ingest.template_text import WILDCARD, TemplateTexts, split_text
from logpilot_dagster.privacy.pii import MASKED_VALUE

WILDCARD_RUN = r"(?:<\*>){2,}"
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


#: A token that may name an event (``HTTPS``, ``user=root``, ``'Active'``, ``SPP.``): a word, maybe ``key=``-prefixed
#: and wrapped in punctuation. Tokens with a wildcard, inner dots or slashes (hosts, paths, classes) or long hex
#: runs are variables as soon as they differ.
NAME_TOKEN = re.compile(r"[\"'(\[{<]*(?:\w+[=:])?[A-Za-z][\w-]*[\"')\]}>.,;:!?]*")
#: Weekday and month names are parts of a date, a variable (when masks have not taken the date already).
CALENDAR_TOKEN = re.compile(r"\W*(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\W*")
#: Units a written quantity may carry (data sizes, durations, percent).
UNIT_TOKEN = re.compile(r"[kKMGTP]i?B|B|bytes?|[mun]?s|secs?|seconds?|mins?|minutes?|hours?|%")
PUNCTUATION = "()[]{},;:.!?"
QUANTITY_HINT = re.compile(rf"<\*>\S* [(\[{{]*(?:{UNIT_TOKEN.pattern})[)\]}},;:.!?]*(?: |$)")
HEX_TOKEN = re.compile(r"(?:\w+[=:])?[0-9a-fA-F]{8,}\W*")


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
    split_values: int = 3  # a position stays literal, one template per token, while it holds at most this many

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


def _is_unit(token: str) -> bool:
    return UNIT_TOKEN.fullmatch(token.strip(PUNCTUATION)) is not None


def quantity_form(template: str) -> str:
    """The template with each written-out quantity, a variable followed by units and variables (``<*> bytes (<*>
    KB)``, ``<<*> sec``, ``<*> ms``), as one ``<*>``; brackets opened inside the quantity are dropped with it."""
    if not QUANTITY_HINT.search(template):
        return template
    tokens, out, i = template.split(" "), [], 0
    while i < len(tokens):
        j = i + 1
        while WILDCARD in tokens[i]:  # units, then maybe another variable with its own units: "(<*> KB)"
            k = j + 1 if j > i + 1 and j < len(tokens) and WILDCARD in tokens[j] else j
            end = k
            while end < len(tokens) and _is_unit(tokens[end]):
                end += 1
            if end == k:
                break
            j = end
        span = tokens[i:j]
        if j == i + 1:
            out.append(tokens[i])
            i += 1
            continue
        tail = re.search(r"[)\]},;:.!?]*$", span[-1]).group()
        opened = sum(t.count("(") for t in span) - sum(t.count(")") for t in span[:-1])
        out.append(WILDCARD + tail.replace(")", "", max(opened, 0)))
        i = j
    return " ".join(out)


def is_name(token: str) -> bool:
    return (NAME_TOKEN.fullmatch(token) is not None and HEX_TOKEN.fullmatch(token) is None
            and CALENDAR_TOKEN.fullmatch(token) is None)


def template_id(service: str, template: str) -> str:
    """Deterministic id of a template shape within a service."""
    return hashlib.sha1(f"{service}\x1f{template}".encode()).hexdigest()[:16]


def mining_keys(messages: pa.Array, pattern: str | None) -> pa.Array:
    """Mask variables in a whole column (RE2, vectorised); adjacent variables (``<IP>:80``) become one."""
    if pattern is None:
        return messages
    return pc.replace_substring_regex(pc.replace_substring_regex(messages, pattern, WILDCARD), WILDCARD_RUN, WILDCARD)


@dataclass
class ServiceMiner:
    """Drain3 for one service, seeded with the registry's known templates; hands out stable ids.

    A Drain cluster may hold a few templates: a position where Drain put ``<*>`` stays literal while it has held
    at most ``config.split_values`` distinct tokens (``SOCKS5`` next to ``HTTPS``: two events, not one variable);
    once it holds more it is a variable for the whole cluster, and the literal templates become aliases of the
    general one. Texts that differ only in how a quantity is written (``<*> bytes sent`` and ``<*> bytes (<*> KB)
    sent``, ``size <*> B`` and ``size <*> KB``), even from Drain clusters of different lengths, are one template:
    their quantity form. A template's id is the hash of its written text (``template_text``).
    """

    service: str
    config: MinerConfig = field(default_factory=MinerConfig)
    seed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        drain = WildcardAwareDrain if self.config.wildcard_aware else Drain
        self.drain = drain(depth=self.config.depth, sim_th=self.config.sim_th, max_children=100, param_str=WILDCARD)
        self.aliases: dict[str, str] = {}
        self.counts: dict[str, int] = {}  # lines per template id
        self._slots: dict[int, list[set[str] | None]] = {}  # per cluster and position: tokens seen (None: variable)
        self._texts: dict[int, set[str]] = {}  # per cluster: its current texts (masked-key form)
        self._cluster_of: dict[str, int] = {}  # text -> its cluster
        self._forms: dict[str, str] = {}  # quantity form of each text
        self._families: dict[str, set[str]] = {}  # texts by quantity form
        self._merged: set[str] = set()  # quantity forms that two or more texts share: shown as the form
        self.texts = TemplateTexts()  # how each template is written, from the values seen
        self._written: dict[str, str] = {}  # shown template (masked-key form) -> its written text when last written
        if self.seed:
            self.mine_keys(self.seed, [0] * len(self.seed))

    def _text(self, cluster_id: int, tokens: list[str]) -> str:
        return " ".join(t if s is not None else WILDCARD for t, s in zip(tokens, self._slots[cluster_id]))

    def _observe(self, cluster_id: int, tokens: list[str]) -> bool:
        """Record a key's tokens in its cluster's slots; True when a position became a variable."""
        slots = self._slots.get(cluster_id)
        if slots is None or len(slots) != len(tokens):
            self._slots[cluster_id] = slots = [set() for _ in tokens]
        widened = False
        for pos, token in enumerate(tokens):
            seen = slots[pos]
            if seen is None or token in seen:
                continue
            seen.add(token)
            if len(seen) > 1 and (len(seen) > self.config.split_values or not all(map(is_name, seen))):
                slots[pos] = None
                widened = True
        return widened

    def _render(self, base: str) -> str:
        cluster = self.drain.id_to_cluster[self._cluster_of[base]]
        return self.texts.text(cluster, base.split(" "))

    def _write(self, shown: str) -> str:
        """How a shown template is written (``template_text``): a cluster's text from the values seen at its
        positions; a quantity form as its members' written texts in quantity form when they agree, else as is."""
        if shown in self._merged:
            forms = {quantity_form(self._render(base)) for base in self._families[shown]}
            written = forms.pop() if len(forms) == 1 else shown
        else:
            written = self._render(shown)
        self._written[shown] = written
        return written

    def _id(self, shown: str) -> str:
        return template_id(self.service, self._write(shown))

    def _rewrite(self, cluster_id: int) -> None:
        """Alias the ids of a cluster's templates whose written text changed with the values just seen."""
        for base in self._texts.get(cluster_id, ()):
            shown = self._shown(base)
            before = self._written.get(shown)
            if before is not None and before != self._write(shown):
                self._rename_ids(template_id(self.service, before), self._id(shown))

    def _rename(self, old: str, new: str) -> None:
        """Record the id of the shown template ``old`` (when it was handed out) as an alias of ``new``'s."""
        before = self._written.get(old)
        self._rename_ids(template_id(self.service, before if before is not None else self._write(old)),
                         self._id(new))

    def _rename_ids(self, old_id: str, new_id: str) -> None:
        """Record ``old_id`` as an alias of ``new_id`` (chains resolved) and move its line count."""
        if old_id == new_id or old_id not in self.counts:
            return
        self.aliases[old_id] = new_id
        for alias, target in list(self.aliases.items()):
            if target == old_id:
                self.aliases[alias] = new_id
        self.counts[new_id] = self.counts.get(new_id, 0) + self.counts.pop(old_id)

    def _shown(self, base: str) -> str:
        """The template a cluster's text is shown as: its quantity form once two texts share that form."""
        form = self._forms[base]
        return form if form in self._merged else base

    def _adopt(self, base: str) -> None:
        """Put a text in its quantity family; a family that gets a second member is one template from then on."""
        form = self._forms[base] = quantity_form(base)
        family = self._families.setdefault(form, set())
        family.add(base)
        if len(family) > 1 and form not in self._merged:
            self._merged.add(form)
            for member in family:
                self._rename(member, form)

    def _widen(self, cluster_id: int) -> None:
        """Re-mask a cluster's texts after one of its positions became a variable."""
        texts = set()
        for old in self._texts.get(cluster_id, ()):
            new = self._text(cluster_id, old.split(" "))
            if new != old:
                shown = self._shown(old)
                self._families[self._forms.pop(old)].discard(old)
                self._cluster_of[new] = cluster_id
                self._adopt(new)
                self._rename(shown, self._shown(new))
            texts.add(new)
        self._texts[cluster_id] = texts

    def mine_keys(self, keys: list[str], counts: list[int] | None = None,
                  values: list[tuple[list[str], list[str], list[str]] | None] | None = None) -> list[str]:
        """Add distinct masked messages; return the final template id of each (same order). ``values``: the
        (gaps, token values, key tokens) of a message behind each key, that the template text is written from
        (default: the key itself)."""
        return [self._id(self._shown(base)) for _, base in self._place(keys, counts, values)]

    def _place(self, keys, counts=None, values=None) -> list[tuple[int, str]]:
        """(cluster, template) of each key, its line count added."""
        placed = []
        for i, key in enumerate(keys):
            cluster, _ = self.drain.add_log_message(key)
            tokens = self.drain.get_content_as_tokens(key)
            seen = values[i] if values else None
            self.texts.observe(cluster, *(seen or split_text(key)))
            if self._observe(cluster.cluster_id, tokens):
                self._widen(cluster.cluster_id)
            self._rewrite(cluster.cluster_id)
            placed.append((cluster.cluster_id, tokens))
        out = []
        for cluster_id, tokens in placed:
            base = self._text(cluster_id, tokens)
            texts = self._texts.setdefault(cluster_id, set())
            if base not in texts:
                texts.add(base)
                self._cluster_of[base] = cluster_id
                self._adopt(base)
            out.append((cluster_id, base))
        for i, (_, base) in enumerate(out):
            tid = self._id(self._shown(base))
            self.counts[tid] = self.counts.get(tid, 0) + (counts[i] if counts else 1)
        return out

    def _known(self, key: str) -> tuple[int, str] | None:
        """The (cluster, template) of a key that fits a known template as it is (the template would not
        change), else None."""
        cluster = self.drain.match(key, full_search_strategy="fallback")
        if cluster is None or cluster.cluster_id not in self._texts:
            return None
        tokens = self.drain.get_content_as_tokens(key)
        slots = self._slots[cluster.cluster_id]
        if any(s is not None and t not in s for t, s in zip(tokens, slots)):
            return None
        text = self._text(cluster.cluster_id, tokens)
        return (cluster.cluster_id, text) if text in self._texts[cluster.cluster_id] else None

    def assign(self, messages: pa.Array, match_first: bool = False) -> pa.Array:
        """Template id per line for a column of (PII-masked) messages (``mine`` without the params)."""
        return self.mine(messages, match_first).ids

    def mine(self, messages: pa.Array, match_first: bool = False) -> "Assigned":
        """Template id and params per line for a column of (PII-masked) messages; Drain sees each distinct key
        once, and the template text is written from the first message of each key.

        With ``match_first`` (the live path) a key that matches a known template keeps that template unchanged;
        only unknown keys are mined. A message that does not fit its template's text widens the text (up to
        ``WIDEN_ROUNDS`` times; then its params are ``[NULL, message]``, counted in ``unfitted``).
        """
        keys = mining_keys(messages, self.config.pattern)
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        if isinstance(messages, pa.ChunkedArray):
            messages = messages.combine_chunks()
        encoded = pc.dictionary_encode(keys)
        uniq = encoded.dictionary.to_pylist()
        rows = encoded.indices.to_numpy(zero_copy_only=False)
        first = np.unique(rows, return_index=True)[1]
        counts = np.bincount(rows, minlength=len(uniq)).tolist()
        places: list[tuple[int, str] | None] = [None] * len(uniq)
        if match_first:
            for i, key in enumerate(uniq):
                places[i] = place = self._known(key)
                if place is not None:
                    tid = self._id(self._shown(place[1]))
                    self.counts[tid] = self.counts.get(tid, 0) + counts[i]
        todo = [i for i, place in enumerate(places) if place is None]
        shown = messages.take(pa.array(first[todo], pa.int64())).to_pylist()
        values = [template_text.token_values(uniq[i], m) for i, m in zip(todo, shown)]
        for i, place in zip(todo, self._place([uniq[i] for i in todo], [counts[i] for i in todo], values)):
            places[i] = place
        for i, (cluster_id, base) in enumerate(places):
            if base not in self._forms:  # matched, then widened by a key of this batch mined after it
                places[i] = (cluster_id, self._text(cluster_id, base.split(" ")))
        texts = pa.array([self._write(self._shown(p[1])) for p in places], pa.string())
        params = template_text.extract_params(messages, texts.take(encoded.indices))
        for _ in range(WIDEN_ROUNDS):
            misfits = np.flatnonzero(pc.is_null(params).to_numpy(zero_copy_only=False))
            if not len(misfits):
                break
            redo = np.flatnonzero(np.isin(rows, self._widen_texts(messages, rows, misfits, uniq, places)))
            texts = pa.array([self._write(self._shown(p[1])) for p in places], pa.string())
            again = template_text.extract_params(messages.take(pa.array(redo)), texts.take(pa.array(rows[redo])))
            mask = np.zeros(len(rows), bool)
            mask[redo] = True
            params = pc.if_else(pa.array(mask), again.take(pa.array(np.maximum(np.cumsum(mask) - 1, 0))), params)
        ids = pa.array([template_id(self.service, t) for t in texts.to_pylist()], pa.string())
        return Assigned(ids.take(encoded.indices), template_text.unfitted(messages, params),
                        pc.sum(pc.is_null(params)).as_py() or 0)

    def _widen_texts(self, messages, rows, misfits, uniq, places) -> list[int]:
        """Observe one message per key that does not fit its template's text; the keys whose clusters were
        rewritten."""
        first: dict[int, int] = {}
        for r in misfits.tolist():
            first.setdefault(int(rows[r]), r)
        shown = messages.take(pa.array(list(first.values()), pa.int64())).to_pylist()
        changed = set()
        for u, message in zip(first, shown):
            cluster_id = places[u][0]
            seen = template_text.token_values(uniq[u], message)
            if seen is not None:
                self.texts.observe(self.drain.id_to_cluster[cluster_id], *seen)
                self._rewrite(cluster_id)
                changed.add(cluster_id)
        return [u for u, p in enumerate(places) if p[0] in changed]

    def templates(self) -> dict[str, str]:
        """Current template text by id."""
        shown = {self._shown(base) for texts in self._texts.values() for base in texts}
        return {template_id(self.service, text): text for text in map(self._write, shown)}


#: How often one batch may widen template texts for messages that do not fit them.
WIDEN_ROUNDS = 3


@dataclass
class Assigned:
    """Template ids and params of a batch of messages; ``unfitted`` messages keep ``[NULL, message]``."""

    ids: pa.Array
    params: pa.Array
    unfitted: int
