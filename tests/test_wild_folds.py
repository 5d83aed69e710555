"""scripts/research/wild_stats.py: folds by person, intervals by person, reading scores files."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.tensorflow  # scikit-learn, from the host side's extra

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "research" / "wild_stats.py"


@pytest.fixture(scope="module")
def wild_stats():
    spec = importlib.util.spec_from_file_location("wild_stats", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["wild_stats"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["wild_stats"]


def photos() -> list[dict]:
    """40 people: most with happy and neutral photos, a few with many photos of a rare class."""
    rows = []
    for p in range(40):
        for n, emotion in enumerate(("happy", "neutral", "happy") if p % 4 else ("neutral",)):
            rows.append({"image": f"Person_{p}_{n:04d}.jpg", "emotion": emotion})
    for p, count in ((3, 12), (7, 5), (11, 2), (15, 1), (19, 1)):  # five people with disgust
        rows += [{"image": f"Person_{p}_{100 + n:04d}.jpg", "emotion": "disgust"} for n in range(count)]
    return rows


def test_a_person_is_in_one_fold_and_the_expressions_are_spread(wild_stats):
    rows = photos()
    fold = wild_stats.fold_of(rows, 5)
    folds_of_person: dict[str, set[int]] = {}
    for row, k in zip(rows, fold, strict=True):
        folds_of_person.setdefault(wild_stats.person(row["image"]), set()).add(k)
    assert all(len(ks) == 1 for ks in folds_of_person.values())
    assert set(fold) == set(range(5))
    for emotion in ("happy", "neutral"):
        per_fold = Counter(k for row, k in zip(rows, fold, strict=True) if row["emotion"] == emotion)
        assert max(per_fold.values()) - min(per_fold.values()) <= 3, (emotion, per_fold)
    disgust = Counter(k for row, k in zip(rows, fold, strict=True) if row["emotion"] == "disgust")
    assert len(disgust) >= 3, disgust  # the rare class is not left to one or two folds
    assert fold == wild_stats.fold_of(rows, 5)  # the same folds on every run


def test_person_is_the_name_before_the_photo_number(wild_stats):
    assert wild_stats.person("Anna_Kournikova_0011.jpg") == "Anna_Kournikova"
    assert wild_stats.person("Dileep_105.jpg") == "Dileep"


def test_intervals_by_person_hold_the_figure_and_pair_two_readings(wild_stats):
    rows = photos()
    truth = [row["emotion"] for row in rows]
    people = [wild_stats.person(row["image"]) for row in rows]
    # one reading: right on everything but Person_3 (who holds most disgust photos)
    read = [t if who != "Person_3" else "neutral" for t, who in zip(truth, people, strict=True)]
    table = wild_stats.recall_table(truth, read, ("happy", "neutral", "disgust"))
    interval = wild_stats.person_interval(truth, read, people)
    assert interval["accuracy"][0] < table["accuracy"] <= interval["accuracy"][1]
    assert interval["macro_recall"][0] < table["macro_recall"] < interval["macro_recall"][1]
    # the same reading against itself differs by nothing; against a perfect one, only by Person_3
    assert wild_stats.person_interval(truth, read, people, baseline=read)["accuracy"] == [0.0, 0.0]
    paired = wild_stats.person_interval(truth, read, people, baseline=truth)
    assert paired["accuracy"][1] <= 0.0 and paired["macro_recall"][0] < -0.1


def test_a_scores_file_must_cover_every_photo(wild_stats, tmp_path):
    rows = photos()
    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    onehot = {label: [float(label == name) for name in labels] for label in labels}
    full = {row["image"]: onehot[row["emotion"]] for row in rows}
    full[rows[0]["image"]] = None  # no face found: read as nothing
    (tmp_path / "full.json").write_text(json.dumps({"labels": labels, "scores": full}))
    read = wild_stats.read_scores(tmp_path / "full.json", rows)
    assert read[0] is None and read[1:] == [row["emotion"] for row in rows[1:]]
    del full[rows[5]["image"]]
    (tmp_path / "part.json").write_text(json.dumps({"labels": labels, "scores": full}))
    with pytest.raises(wild_stats.WildDataError, match=r"no entry for 1 of the \d+ photos"):
        wild_stats.read_scores(tmp_path / "part.json", rows)
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(wild_stats.WildDataError, match="not a scores file"):
        wild_stats.read_scores(tmp_path / "other.json", rows)
