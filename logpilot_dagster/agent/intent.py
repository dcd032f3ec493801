"""Offline intent classifier: TF-IDF word + character n-grams and logistic regression.

Trained at first use from the shipped labelled questions (``data/agent/intent_training.jsonl``) and kept in
memory. It reads the *masked* question (see :mod:`question`): names, levels, times and quoted phrases are
placeholders, so the content of a quoted log line ("ignore previous instructions; DROP TABLE logs") cannot
steer the intent. Imperative write requests ("delete ...", "drop ...") are refused by rule.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from logpilot_dagster.agent.entities import Resolver
from logpilot_dagster.agent.question import QUOTED, ParsedQuestion, load_catalog_csv, parse_question
from logpilot_dagster.settings import SHIPPED_DATA

INTENTS = ("metrics", "search", "rca", "catalog", "changes", "out_of_scope")
TRAINING_FILE = SHIPPED_DATA / "agent" / "intent_training.jsonl"
#: Training questions are masked against the shipped catalog; placeholders make the live catalog irrelevant.
_TRAINING_NOW = datetime(2025, 1, 1)
_WRITE_REQUEST = re.compile(
    r"^\s*(?:please\s+|can\s+you\s+|could\s+you\s+|now\s+)?(?:delete|drop|truncate|insert|update|alter|wipe|purge|"
    r"erase|remove|rename|create|grant|modify|change|attach|detach|export|copy|install|vacuum|restart|deploy)\b",
    re.I,
)


#: Hand-written cue words per intent family, as binary features beside the n-grams.
CUES = {
    "count": (
        r"\bhow many\b|\bcount|\bnumber of\b|\btotal|\btally|\bvolume\b|\bhow often\b|"
        r"\bhow much\b"
    ),
    "rate": (r"\brate\b|\bratio\b|percent|\bshare\b|\bfraction\b|proportion"),
    "trend": (
        r"\btrend|\bover time\b|\bper (?:month|year|day|week|hour|quarter)\b|"
        r"\bby (?:month|year|day|week|hour|quarter)\b|monthly|yearly|daily|weekly|hourly|histogram|"
        r"\bgrow|\bchange"
    ),
    "groupby": (r"\b(?:per|by|each)\s+(?:svcname|service|level|department|criticality|source|template|levelname)"),
    "rank": (
        r"\btop\b|\bmost\b|\bfewest\b|\bleast\b|\bhighest\b|\blowest\b|\bbusiest\b|"
        r"\bpeak\b|\brank|\bnoisiest\b|\bbiggest\b"
    ),
    "firstlast": (
        r"\bwhen (?:did|was)\b|\bfirst (?:time|occurrence|seen)|\blast (?:time|occurrence|seen)|"
        r"\bearliest\b"
    ),
    "avg": (r"\baverage\b|\bavg\b|\bmean\b"),
    "show": (
        r"^\s*(?:show|find|search|grep|look|display|pull|retrieve|fetch|list|let me see|"
        r"give me (?:some |a few )?(?:example|sample))|"
        r"\bexamples?\b|\bsamples?\b"
    ),
    "lines": (r"\blines?\b|\bmessages?\b|\bentries\b|\blog lines\b|\bevents?\b"),
    "like": (
        r"\blike\b|\bcontain|\bmention|\bmatching\b|\bsimilar\b|\bsays?\b|\blook like\b|"
        r"\bwith the word\b"
    ),
    "why": (r"\bwhy\b|\bcause|\broot\b|\bwrong\b|\bgoing on\b"),
    "fix": (
        r"\bfix|\bresolve|\bremediat|\bmitigat|\btroubleshoot|\bdiagnos|\brecover|\bprevent|"
        r"\bhandle|\bdebug\b|\btriage|\bplaybook|\brunbook|\bsteps?\b|"
        r"\bwhat (?:should|do) (?:i|we)\b|\bhow (?:do|can|should) (?:i|we)\b|\bhow to\b|\bhelp\b|"
        r"\bguide|\bexplain|\bmean\b"
    ),
    "owner": (
        r"\bowns?\b|\bowned\b|\bowner|\bresponsible\b|\bcontact\b|\bpage\b|\bon-?call\b|"
        r"\bescalat|\bmaintain|\bwhose\b|\breach\b|\bcall\b|\bping\b"
    ),
    "org": (
        r"\bteam\b|\bdepartments?\b|\bdeptname\b|\bcatalog\b|\bcriticality\b|\bcritname\b|"
        r"\btier\b|\bbelongs?\b|\bpart of\b|\borg\b"
    ),
    "entity": (
        r"\bsvcname\b|\blevelname\b|\bdeptname\b|\bcritname\b|\bowneremail\b|"
        r"\bquotedphrase\b"
    ),
    "time": (r"\btimeexpr\b"),
    "domain": (
        r"\blogs?\b|\blogged\b|\btemplates?\b|\bquarantin|\bservices?\b|\bsystems?\b|"
        r"\bincident|\bspike|\berrors?\b|\btimeouts?\b|\bdeadlock|\bfailures?\b|\bfail"
    ),
    "action": (
        r"^\s*(?:please\s+)?(?:send|shut|open|book|schedule|scale|reboot|kill|mark|merge|play|reveal|forget|"
        r"ignore|disregard|pretend|add|make|increase|overwrite|replace|write|translate|convert|recommend|"
        r"tell me a|give me (?:the|your) (?:admin|system|api))"
    ),
    "chitchat": (
        r"^\s*(?:hi|hello|hey|thanks|thank you|bye|good (?:morning|evening|night))\b|\bwho are you\b|"
        r"\bwho made you\b|\bwhat can you do\b"
    ),
}
_CUE_PATTERNS = [re.compile(pattern) for pattern in CUES.values()]


def cue_matrix(texts: list[str]) -> sparse.csr_matrix:
    """One binary column per cue in :data:`CUES`."""
    return sparse.csr_matrix(np.array([[float(bool(p.search(t))) for p in _CUE_PATTERNS] for t in texts]))


def load_examples(path: Path = TRAINING_FILE) -> tuple[list[str], list[str]]:
    """(questions, intents) from a JSON-lines file of ``{"question", "intent"}`` objects."""
    questions, intents = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            questions.append(item["question"])
            intents.append(item["intent"])
    return questions, intents


def masked_examples(path: Path = TRAINING_FILE) -> tuple[list[str], list[str]]:
    """(masked questions, intents) ready for :func:`build_model`."""
    questions, intents = load_examples(path)
    resolver = Resolver(load_catalog_csv(SHIPPED_DATA / "system_catalog.csv"))
    return [parse_question(q, resolver, _TRAINING_NOW).masked for q in questions], intents


def build_model() -> Pipeline:
    """An untrained pipeline: masked text -> word(1-2) + char_wb(2-5) TF-IDF + cues -> logistic regression."""
    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"[\w@.-]+"),
            ),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
            ("cues", FunctionTransformer(cue_matrix)),
        ],
        transformer_weights={"words": 1.0, "chars": 1.0, "cues": 0.5},
    )
    classifier = LogisticRegression(C=5.0, max_iter=5000, class_weight="balanced")
    return Pipeline([("features", features), ("classifier", classifier)])


def content_words(masked: str) -> set[str]:
    """Lower-case words of a masked question that carry meaning (no stop words, placeholders or numbers)."""
    return {
        w
        for w in re.findall(r"[a-z][a-z0-9_-]+", masked)
        if w not in ENGLISH_STOP_WORDS and w not in ("timeexpr", "num") and len(w) > 2
    }


class IntentModel:
    """The fitted pipeline plus the in-scope vocabulary used as a gate for out-of-scope questions."""

    def __init__(self, masked: list[str], intents: list[str]):
        self.pipeline = build_model().fit(masked, intents)
        self.vocabulary = set().union(*(content_words(m) for m, i in zip(masked, intents) if i != "out_of_scope"))

    def in_domain(self, parsed: ParsedQuestion) -> bool:
        """Names a catalog entity, quotes or grounds a log phrase, or uses a word of the in-scope questions."""
        e = parsed.entities
        named = e.services or e.departments or e.levels or e.criticalities or e.owners
        return bool(named or parsed.quoted or parsed.phrases or content_words(parsed.masked) & self.vocabulary)

    def predict(self, parsed: ParsedQuestion) -> tuple[str, float]:
        if _WRITE_REQUEST.match(QUOTED.sub(" ", parsed.text)) or not self.in_domain(parsed):
            return "out_of_scope", 1.0
        if re.search(r"\bquarantin", parsed.residual):
            return "metrics", 1.0  # only counted: quarantined lines are never searched or explained
        probabilities = self.pipeline.predict_proba([parsed.masked])[0]
        best = probabilities.argmax()
        return str(self.pipeline.classes_[best]), float(probabilities[best])


@lru_cache(maxsize=4)
def trained_model(path: Path = TRAINING_FILE) -> IntentModel:
    """The classifier fitted on ``path`` (fitted once per process and path)."""
    return IntentModel(*masked_examples(path))


def classify(parsed: ParsedQuestion, path: Path = TRAINING_FILE) -> tuple[str, float]:
    """(intent, probability) for a parsed question; write requests and off-domain questions are out of scope."""
    return trained_model(path).predict(parsed)
