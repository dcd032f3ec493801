"""Template text and params: how a mined group is written, and the values that rebuild each message from it.

Drain groups masked messages token by token (``mining``). The text of a group is written from the values seen
at each position: a position that varies, or that holds a masked variable, becomes ``<*>`` with the constant
punctuation around it kept (``[<*>]``, ``rhost=<*>``, ``<*>,``, ``core.<*>``, ``[ib_sm_sweep.c:<*>]``); a constant
prefix or suffix is kept only when it ends (starts) at punctuation and holds no digit, space or placeholder, so
``blk_<*>`` and ``/<*>`` stay one ``<*>``. Whitespace between tokens is kept as seen, and a run of
``RUN_LENGTH`` or more bare ``<*>`` tokens (a list of values) is one ``<*>``.

The params of a message are the substrings at the ``<*>`` of its template (an anchored regex built from the
text), so ``render(template, params) == message`` for every row. A message that does not fit its template's
text widens the text (the template id changes and the old one becomes an alias); one that still does not fit
(whitespace that varies between two constant tokens) keeps ``[NULL, message]`` as params, counted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.privacy.pii import MASKED_VALUE

WILDCARD = "<*>"
#: A run of this many bare ``<*>`` tokens or more is written as one ``<*>`` (a variable-length list of values).
RUN_LENGTH = 7
#: Characters at which a kept prefix may end or a kept suffix start (``_`` and ``/`` are part of values).
BOUNDARY = frozenset("[](){}<>=:;,.'\"@#|!?-+*&%$^~`")
#: What never belongs to a kept prefix or suffix: digits, a minus sign, whitespace, wildcards, PII placeholders.
_VARIABLE = re.compile(rf"\d|(?<![A-Za-z0-9])-(?=\d)|\s|<\*>|{MASKED_VALUE}")
_SPACE = re.compile(r"\s+")
#: A name of word parts joined by dots or dashes (``core.2275``, ``node-12``, ``msra-sa-41``).
_NAME = re.compile(r"\w+(?:[.-]\w+)*")
_PARAMS = pa.list_(pa.string())


def split_text(text: str) -> tuple[list[str], list[str]]:
    """(gaps, tokens) of a text: the tokens Drain sees (whitespace-split) and the whitespace around them, so
    ``gaps[0] + tokens[0] + gaps[1] + ... + tokens[-1] + gaps[-1] == text``."""
    parts = _SPACE.split(text)
    gaps = _SPACE.findall(text)
    if parts and parts[0] == "":
        parts = parts[1:]
    else:
        gaps = [""] + gaps
    if parts and parts[-1] == "":
        parts = parts[:-1]
    else:
        gaps = gaps + [""]
    return gaps, parts


def token_values(key: str, message: str) -> tuple[list[str], list[str], list[str]] | None:
    """(gaps, token values, key tokens) of a message from its mining key: the substring of the message at each
    token of the key (None if the message does not fit its key, which cannot happen for a key made from it)."""
    gaps, keys = split_text(key)
    if WILDCARD not in key:
        return gaps, keys, keys
    body = "".join(_escape(g) + "(" + ".*?".join(_escape(p) for p in k.split(WILDCARD)) + ")"
                   for g, k in zip(gaps, keys))
    found = re.match(f"{body}{_escape(gaps[-1])}$", message, re.S)
    return (gaps, list(found.groups()), keys) if found else None


def _common_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def _last_boundary(text: str) -> int:
    return max((i for i, ch in enumerate(text) if ch in BOUNDARY), default=-1) + 1


def _punctuation_tail(text: str) -> str:
    return text[next((i + 1 for i in range(len(text) - 1, -1, -1) if text[i] not in BOUNDARY), 0):]


@dataclass
class Position:
    """What the values seen at one position share: a sample with its mining-key token, whether every value had
    that key token, the length of their common prefix and suffix and the shortest length (enough to write the
    position, and mergeable one value at a time)."""

    sample: str
    key: str
    same_key: bool
    prefix: int
    suffix: int
    shortest: int

    @classmethod
    def of(cls, value: str, key: str) -> "Position":
        return cls(value, key, True, len(value), len(value), len(value))

    def add(self, value: str, key: str) -> None:
        if WILDCARD in self.sample and _fits(self.sample, value):
            return  # an instance of a known text (a template seeded from the registry): the text stays as it is
        self.same_key = self.same_key and key == self.key
        self.prefix = min(self.prefix, _common_prefix(self.sample, value))
        self.suffix = min(self.suffix, _common_prefix(self.sample[::-1], value[::-1]))
        self.shortest = min(self.shortest, len(value))

    def text(self) -> str:
        """The position's text. Where every value had the same key token with several masked variables apart
        (``ready=<*>,policy=<*>``, ``<*>##<*>``), that token's literal parts are kept between them. Otherwise
        ``prefix<*>suffix``: the constant prefix up to its last punctuation and the constant punctuation at the
        end (or the key token's literal end from its first punctuation: ``<*>,uid``), neither holding a variable
        character nor a masked word (``true``); a prefix stops before a ``/`` (a path is one value) and never ends
        inside a dotted or dashed name of three or more parts (a host name such as ``msra-sa-41`` or
        ``proxy.example.com:5070`` is one value)."""
        if self.same_key and self.key != self.sample:
            parts = re.sub(r"(?:<\*>)+", WILDCARD, self.key).split(WILDCARD)
            if len(parts) > 2 and all(parts[1:-1]):
                return WILDCARD.join([parts[0][:_last_boundary(parts[0])]] + parts[1:-1]
                                     + [_punctuation_tail(parts[-1])])
        sample = self.sample
        spans = [m.span() for m in _VARIABLE.finditer(sample)]
        spans += [(a, b) for a, b in self._masked() if not _VARIABLE.search(sample, a, b)]
        first = min((a for a, _ in spans), default=len(sample))
        last = max((b for _, b in spans), default=0)
        cut = min(self.prefix, first)
        for name in _NAME.finditer(sample):
            if name.start() <= cut <= name.end() + 1 and name.group().count(".") + name.group().count("-") >= 2:
                cut = min(cut, name.start())
                break
        head = sample[:cut].split("/", 1)[0]
        head = head[:_last_boundary(head)]
        tail = _punctuation_tail(sample[max(len(sample) - self.suffix, last, len(head)):])
        if self.same_key and WILDCARD in self.key:
            literal = self.key.rsplit(WILDCARD, 1)[1]
            literal = literal[next((i for i, ch in enumerate(literal) if ch in BOUNDARY), len(literal)):]
            tail = literal if len(literal) > len(tail) else tail
        if len(head) + len(tail) > self.shortest:
            tail = ""
            head = head[:self.shortest]
        return f"{head}{WILDCARD}{tail}"

    def _masked(self) -> list[tuple[int, int]]:
        """Where the sample's masked variables are (from its key token)."""
        if WILDCARD not in self.key or self.key == self.sample:
            return []
        found = re.match(template_regex(self.key), self.sample)
        return [found.span(g) for g in range(1, (found.lastindex or 0) + 1)] if found else []


class TemplateTexts:
    """The text of each Drain cluster, written from the values observed at its positions."""

    def __init__(self) -> None:
        self._tokens: dict[int, list[str]] = {}  # cluster id -> Drain's template tokens when last observed
        self._positions: dict[int, dict[int, Position]] = {}
        self._gaps: dict[int, list[str]] = {}
        self._text: dict[int, dict[tuple[str, ...], str]] = {}

    def observe(self, cluster, gaps: list[str], values: list[str], keys: list[str] | None = None) -> None:
        """Record one message's gaps, token values and key tokens in ``cluster`` (right after Drain added it)."""
        keys = values if keys is None else keys
        cid = cluster.cluster_id
        tokens = list(cluster.log_template_tokens)
        before = self._tokens.get(cid)
        positions = self._positions.setdefault(cid, {})
        for i, token in enumerate(tokens):
            if WILDCARD not in token or i >= len(values):
                continue
            position = positions.get(i)
            if position is None:
                position = Position.of(*((before[i], before[i]) if before is not None else (values[i], keys[i])))
                positions[i] = position
                if before is None:
                    continue
            position.add(values[i], keys[i])
        known = self._gaps.get(cid)
        if known is None or len(known) != len(gaps):
            self._gaps[cid] = list(gaps)
        else:
            self._gaps[cid] = [g if g == h else os.path.commonprefix([g, h]) for g, h in zip(known, gaps)]
        self._tokens[cid] = tokens
        self._text.pop(cid, None)

    def text(self, cluster, tokens: list[str]) -> str:
        """The text of ``cluster``'s template ``tokens`` (masked-key form): a token with ``<*>`` is written from
        the values seen at its position."""
        written = self._text.setdefault(cluster.cluster_id, {})
        key = tuple(tokens)
        if key not in written:
            written[key] = self._write(cluster.cluster_id, tokens)
        return written[key]

    def _write(self, cid: int, tokens: list[str]) -> str:
        positions = self._positions.get(cid, {})
        written = [t if WILDCARD not in t else positions[i].text() if i in positions else WILDCARD
                   for i, t in enumerate(tokens)]
        gaps = self._gaps.get(cid)
        if gaps is None or len(gaps) != len(tokens) + 1:
            gaps = [""] + [" "] * (len(tokens) - 1) + [""]
        items = _merge_runs([(w, g or " ") for w, g in zip(written, gaps[1:-1])] + [(written[-1], gaps[-1])]
                            if written else [])
        out = [gaps[0]]
        for token, gap in items:
            out.append(_balanced("".join(out), token))
            out.append(gap)
        return "".join(out)


def _merge_runs(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(token, whitespace after) with runs of variables written as one ``<*>``: ``RUN_LENGTH`` or more bare
    ``<*>`` tokens, and bare ``<*>`` tokens that end a quoted string (``"GET <*> <*>"`` is ``"GET <*>"``)."""
    merged: list[tuple[str, str]] = []
    i = 0
    while i < len(items):
        j = i
        while j < len(items) and items[j][0] == WILDCARD:
            j += 1
        quoted = "".join(t for t, _ in merged).count('"') % 2 == 1
        if j - i >= RUN_LENGTH:
            merged.append((WILDCARD, items[j - 1][1]))
            i = j
        elif quoted and i < j < len(items) and items[j][0].startswith(WILDCARD + '"'):
            merged.append(items[j])
            i = j + 1
        else:
            merged.append(items[i])
            i += 1
    return merged


_OPENS = {")": "(", "]": "[", "}": "{"}


def _balanced(before: str, token: str) -> str:
    """``token`` with the punctuation after its last ``<*>`` cut back past any closing bracket that nothing
    before it opened (``<*>]`` for ``0000:00:1f.1[A]`` is ``<*>``)."""
    if WILDCARD not in token:
        return token
    body, tail = token.rsplit(WILDCARD, 1)
    stack: list[str] = []
    for ch in before + body:
        if ch in "([{":
            stack.append(ch)
        elif ch in _OPENS and stack and stack[-1] == _OPENS[ch]:
            stack.pop()
    keep = 0
    for i, ch in enumerate(tail):
        if ch in _OPENS:
            if stack and stack[-1] == _OPENS[ch]:
                stack.pop()
            else:
                keep = i + 1
        elif ch in "([{":
            stack.append(ch)
    return body + WILDCARD + tail[keep:]


# -- params ------------------------------------------------------------------------------------------------------
_ESCAPE = re.compile(r"([\\.^$|?*+()\[\]{}])")


def _escape(text: str) -> str:
    return _ESCAPE.sub(r"\\\1", text)


def template_regex(template: str) -> str:
    """Anchored regex (RE2 and Python) with one group ``p<i>`` per ``<*>`` of ``template``."""
    parts = template.split(WILDCARD)
    body = "".join(_escape(part) + (f"(?P<p{i}>.*?)" if i < len(parts) - 1 else "")
                   for i, part in enumerate(parts))
    return f"(?s)^{body}$"


@lru_cache(maxsize=4096)
def _text_pattern(text: str) -> re.Pattern:
    return re.compile(template_regex(text))


def _fits(text: str, value: str) -> bool:
    """Whether ``value`` is ``text`` with its ``<*>`` filled in."""
    return _text_pattern(text).match(value) is not None


def render(template: str, params: list[str | None]) -> str:
    """The message that ``template`` and its ``params`` stand for (``[None, message]``: a message that did not
    fit its template's text)."""
    if params and params[0] is None:
        return params[1]
    parts = template.split(WILDCARD)
    if len(params) != len(parts) - 1:
        raise ValueError(f"template has {len(parts) - 1} wildcards, got {len(params)} params")
    return "".join(part + (params[i] if i < len(params) else "") for i, part in enumerate(parts))


def extract_params(messages: pa.Array, templates: pa.Array) -> pa.Array:
    """Params of each message for its template text (vectorised: one RE2 pass per distinct template); null for
    a message that does not fit its template."""
    n = len(messages)
    if n == 0:
        return pa.array([], _PARAMS)
    encoded = pc.dictionary_encode(templates).combine_chunks() if isinstance(templates, pa.ChunkedArray) \
        else pc.dictionary_encode(templates)
    order = pc.sort_indices(encoded.indices)
    sorted_idx = encoded.indices.take(order).to_numpy(zero_copy_only=False)
    bounds = np.flatnonzero(np.diff(sorted_idx)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [n]])
    ordered = messages.take(order)
    pieces = []
    for start, end in zip(starts, ends):
        template = encoded.dictionary[int(sorted_idx[start])].as_py()
        pieces.append(_params_of(ordered.slice(start, end - start), template))
    out = pa.concat_arrays(pieces)
    return out.take(pc.sort_indices(order))


def _params_of(messages: pa.Array, template: str) -> pa.Array:
    k = template.count(WILDCARD)
    n = len(messages)
    regex = template_regex(template)
    if k == 0:
        fits = pc.match_substring_regex(messages, regex)
        offsets = pa.array(np.zeros(n + 1, np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array([], pa.string()), mask=pc.invert(fits))
    found = pc.extract_regex(messages, regex)
    fields = pa.concat_arrays([found.field(j) for j in range(k)])
    idx = (np.arange(n)[:, None] + np.arange(k)[None, :] * n).ravel()
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, fields.take(pa.array(idx)), mask=found.is_null())


def unfitted(messages: pa.Array, params: pa.Array) -> pa.Array:
    """Params with ``[NULL, message]`` where they are null (a message that does not fit its template text)."""
    missing = pc.is_null(params)
    if not pc.any(missing).as_py():
        return params
    fallback = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * len(messages) + 1, 2, dtype=np.int32)),
                                        _interleave_null(messages))
    return pc.if_else(missing, fallback, params)


def _interleave_null(messages: pa.Array) -> pa.Array:
    n = len(messages)
    both = pa.concat_arrays([pa.nulls(n, pa.string()), messages.cast(pa.string())])
    return both.take(pa.array((np.arange(n)[:, None] + np.array([0, n])[None, :]).ravel()))


def refit_params(con, event_ids_sql: str) -> int:
    """Recompute the params of the ``logs`` rows whose event ids ``event_ids_sql`` selects for the text of their
    current template (run after their template id moved to an alias target); the number of rows refitted.
    Nothing in ``logs`` is read when the selection is empty (the common case)."""
    ids = con.execute(event_ids_sql).fetch_arrow_table()
    if not ids.num_rows:
        return 0
    con.register("refit_ids", pa.table({"event_id": ids.column(0)}))
    try:
        rows = con.execute("SELECT l.event_id, l.message, t.template FROM logs l JOIN templates t USING (template_id) "
                           "WHERE l.event_id IN (SELECT event_id FROM refit_ids)").fetch_arrow_table()
        messages = rows.column("message").combine_chunks()
        params = unfitted(messages, extract_params(messages, rows.column("template").combine_chunks()))
        con.register("refit_rows", pa.table({"event_id": rows.column("event_id"), "params": params}))
        con.execute("UPDATE logs SET params = r.params FROM refit_rows r WHERE logs.event_id = r.event_id")
    finally:
        con.unregister("refit_ids")
        con.unregister("refit_rows")
    return rows.num_rows
