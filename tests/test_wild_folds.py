"""The person-disjoint folds of scripts/research/real_faces.py (cross-validation on real faces)."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.tensorflow  # scikit-learn, from the host side's extra

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "research" / "real_faces.py"


@pytest.fixture(scope="module")
def real_faces():
    spec = importlib.util.spec_from_file_location("real_faces", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["real_faces"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["real_faces"]


def photos() -> list[dict]:
    """40 people: most with happy and neutral photos, a few with many photos of a rare class."""
    rows = []
    for p in range(40):
        for n, emotion in enumerate(("happy", "neutral", "happy") if p % 4 else ("neutral",)):
            rows.append({"image": f"Person_{p}_{n:04d}.jpg", "emotion": emotion})
    for p, count in ((3, 12), (7, 5), (11, 2), (15, 1), (19, 1)):  # five people with disgust
        rows += [{"image": f"Person_{p}_{100 + n:04d}.jpg", "emotion": "disgust"} for n in range(count)]
    return rows


def test_a_person_is_in_one_fold_and_the_expressions_are_spread(real_faces):
    rows = photos()
    fold = real_faces.fold_of(rows, 5)
    folds_of_person: dict[str, set[int]] = {}
    for row, k in zip(rows, fold, strict=True):
        folds_of_person.setdefault(real_faces.person(row["image"]), set()).add(k)
    assert all(len(ks) == 1 for ks in folds_of_person.values())
    assert set(fold) == set(range(5))
    for emotion in ("happy", "neutral"):
        per_fold = Counter(k for row, k in zip(rows, fold, strict=True) if row["emotion"] == emotion)
        assert max(per_fold.values()) - min(per_fold.values()) <= 3, (emotion, per_fold)
    disgust = Counter(k for row, k in zip(rows, fold, strict=True) if row["emotion"] == "disgust")
    assert len(disgust) >= 3, disgust  # the rare class is not left to one or two folds
    assert fold == real_faces.fold_of(rows, 5)  # the same folds on every run


def test_person_is_the_name_before_the_photo_number(real_faces):
    assert real_faces.person("Anna_Kournikova_0011.jpg") == "Anna_Kournikova"
    assert real_faces.person("Dileep_105.jpg") == "Dileep"


def test_intervals_by_person_hold_the_figure_and_pair_two_readings(real_faces):
    rows = photos()
    truth = [row["emotion"] for row in rows]
    people = [real_faces.person(row["image"]) for row in rows]
    # one reading: right on everything but Person_3 (who holds most disgust photos)
    read = [t if who != "Person_3" else "neutral" for t, who in zip(truth, people, strict=True)]
    table = real_faces.recall_table(truth, read, ("happy", "neutral", "disgust"))
    interval = real_faces.person_interval(truth, read, people)
    assert interval["accuracy"][0] < table["accuracy"] <= interval["accuracy"][1]
    assert interval["macro_recall"][0] < table["macro_recall"] < interval["macro_recall"][1]
    # the same reading against itself differs by nothing; against a perfect one, only by Person_3
    assert real_faces.person_interval(truth, read, people, baseline=read)["accuracy"] == [0.0, 0.0]
    paired = real_faces.person_interval(truth, read, people, baseline=truth)
    assert paired["accuracy"][1] <= 0.0 and paired["macro_recall"][0] < -0.1
