"""Loghub-2k helpers shared by benchmarks and tests (data: https://github.com/logpai/loghub)."""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

LOGHUB_DIR = Path(os.environ.get("LOGHUB_2K", Path(__file__).resolve().parents[1].parent / "shared" / "loghub_2k"))


def systems(root: Path = LOGHUB_DIR) -> dict[str, dict]:
    return json.loads((root / "formats.json").read_text())


def ground_truth(name: str, root: Path = LOGHUB_DIR) -> list[dict]:
    with open(root / name / f"{name}_2k.log_structured_corrected.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def grouping_accuracy(truth: list[str], predicted: list[str]) -> float:
    """GA: a line is correct when its predicted group has exactly the lines of its true group."""
    groups_true: dict[str, set[int]] = defaultdict(set)
    groups_pred: dict[str, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, predicted)):
        groups_true[t].add(i)
        groups_pred[p].add(i)
    correct = 0
    for members in groups_pred.values():
        first = next(iter(members))
        if groups_true[truth[first]] == members:
            correct += len(members)
    return correct / len(truth)


def _count(values: list[str]) -> Counter:
    return Counter(values)


def _groups(labels: list[str]) -> list[frozenset[int]]:
    """The line numbers of each label."""
    members: dict[str, set[int]] = defaultdict(set)
    for i, label in enumerate(labels):
        members[label].add(i)
    return [frozenset(m) for m in members.values()]


def f1_grouping_accuracy(truth: list[str], predicted: list[str]) -> float:
    """FGA: F1 of precision (predicted groups equal to a true group) and recall (true groups found)."""
    true_groups, predicted_groups = _groups(truth), _groups(predicted)
    true_sets = set(true_groups)
    correct = sum(1 for s in predicted_groups if s in true_sets)
    precision, recall = correct / len(predicted_groups), correct / len(true_groups)
    return 2 * precision * recall / (precision + recall) if correct else 0.0


def normalise(template: str) -> str:
    """A template with runs of ``<*>`` collapsed and whitespace normalised (for PA)."""
    return re.sub(r"\s+", " ", re.sub(r"(?:<\*>)+", "<*>", template)).strip()


def parsing_accuracy(truth: list[str], predicted: list[str]) -> float:
    """PA: share of lines whose predicted template equals the true one."""
    return sum(normalise(t) == normalise(p) for t, p in zip(truth, predicted)) / len(truth)
