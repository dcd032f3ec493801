"""Ground unquoted message text in a question against the mined log templates.

Two passes: a run of two or more words that occurs verbatim in some template ("payment gateway timeout",
"no space left on device") becomes a phrase (and is not read as service names); a leftover single word
that shares a stem with a template word ("deadlocks", "declines") becomes a stem. Words that match no
template are ignored, so ordinary English in a question never turns into a filter.
"""

from __future__ import annotations

import re

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_EDGE_WORDS = {
    "the",
    "a",
    "an",
    "of",
    "for",
    "in",
    "on",
    "at",
    "to",
    "from",
    "by",
    "with",
    "and",
    "or",
    "is",
    "are",
    "was",
    "were",
    "did",
    "do",
    "does",
    "that",
    "this",
    "which",
    "what",
    "how",
    "many",
    "much",
}
#: Words that shape a question rather than describe a log message.
SHAPE_WORDS = frozenset(
    """
    how many much count counts counted number numbers total totals tally volume often times time first last
    earliest latest recent newest oldest most least top fewest highest lowest busiest peak noisiest biggest
    rate ratio percent percentage share fraction proportion trend trends over per each every by month months
    monthly year years yearly day days daily week weeks weekly hour hours hourly quarter quarters minute
    average avg mean line lines log logs logged logging message messages entry entries event events record
    records template templates pattern patterns kind kinds type types service services system systems team
    teams department departments level levels source sources file files happen happened happens occur
    occurred occurrence occurrences occurs appear appeared appears show shows find search grep list display
    give get see seen saw look looks like similar containing contain contains mention mentions mentioning
    matching match example examples sample samples some any all overall whole entire fleet break broken
    breakdown compare compared comparison versus vs than more less fewer did does do was were when
    which what who whose where why there their our we us me my you your have has had lot lots distinct
    unique different total sum plot chart histogram graph grouped group order sorted sort rank ranked
    ranking stats statistics produce produced emit emitted write wrote written generate generated store
    stored storing keep kept exist exists existing
    record recorded report reported status between since before after during until yet so far far far
    least greatest largest smallest single each per criticality critical high medium low owner owners
    """.split()
)
#: Function words ("across", "every", "within") never make a message filter; words that can describe a log
#: line ("down", "empty", "full", "off") are kept.
_FUNCTION_WORDS = ENGLISH_STOP_WORDS - {
    "down", "up", "off", "out", "empty", "full", "fire", "move", "call", "found", "bill", "system", "back", "top",
    "bottom", "front", "next", "last", "first", "side", "part", "detail", "interest", "cry", "con", "sincere",
}
_WORD = re.compile(r"[a-z0-9]+(?:[_-][a-z0-9]+)*")


def _template_text(template: str) -> str:
    """Lower-case words of a template, wildcards dropped, padded with spaces for whole-word lookups."""
    return " " + " ".join(_WORD.findall(template.replace("<*>", " ").lower())) + " "


def template_phrases(
    text: str, templates: list[str], blocked: list[tuple[int, int]] = ()
) -> list[tuple[tuple[int, int], str]]:
    """Longest runs of 2+ words of ``text`` found verbatim in a template, as ``(span, phrase)``."""
    bodies = [_template_text(t) for t in templates]
    words = [m for m in _WORD.finditer(text.lower()) if all(m.end() <= s or m.start() >= e for s, e in blocked)]
    found, index = [], 0
    while index < len(words):
        for size in range(min(6, len(words) - index), 1, -1):
            run = words[index : index + size]
            if run[0].group(0) in _EDGE_WORDS or run[-1].group(0) in _EDGE_WORDS:
                continue
            if sum(w.group(0) not in _EDGE_WORDS and w.group(0) not in SHAPE_WORDS for w in run) < 2:
                continue
            if any(text[a.end() : b.start()].strip() for a, b in zip(run, run[1:])):
                continue  # punctuation between the words
            phrase = " ".join(w.group(0) for w in run)
            if any(f" {phrase} " in body for body in bodies):
                found.append(((run[0].start(), run[-1].end()), phrase))
                index += size
                break
        else:
            index += 1
    return found


def stem(word: str) -> str:
    """Crude English stem: lower case, common suffixes stripped (declines, declined -> declin)."""
    word = word.lower()
    for suffix in ("ing", "ures", "ure", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def _content_words(text: str) -> list[str]:
    text = text.lower()
    if re.search(r"\bbr(?:eak|oken)\b", text):  # "break X down by level"
        text = re.sub(r"\bdown\b", " ", text)
    return [
        w
        for w in _WORD.findall(text)
        if w not in SHAPE_WORDS and w not in _EDGE_WORDS and w not in _FUNCTION_WORDS and len(w) >= 4
    ]


def _stem_match(mine: str, theirs: str) -> bool:
    """Same stem, or one a prefix of the other when the shorter has at least 5 characters."""
    if mine == theirs:
        return True
    short, long = sorted((mine, theirs), key=len)
    return len(short) >= 5 and long.startswith(short)


def template_stems(text: str, templates: list[str], min_share: float = 0.0) -> list[str]:
    """Stems of the content words of ``text`` that match a template word's stem.

    With ``min_share``, nothing is returned unless at least that share of the content words matched (a
    phrase mostly foreign to the templates is not "like" any of them).
    """
    vocabulary = {stem(w) for t in templates for w in _WORD.findall(_template_text(t)) if len(w) >= 4}
    words = _content_words(text)
    stems = []
    for word in words:
        mine = stem(word)
        matches = [v for v in vocabulary if _stem_match(mine, v)]
        if matches:
            common = min([mine] + matches, key=len)
            if common not in stems:
                stems.append(common)
    grounded = sum(any(_stem_match(stem(w), s) or stem(w).startswith(s) for s in stems) for w in words)
    return stems if words and grounded / len(words) >= min_share else []
