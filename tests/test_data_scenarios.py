"""Scenario builders on small synthetic data: splits, permutations, groups, extra columns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from lifelong.data.scenarios import (
    apply_permutation,
    by_group,
    feature_permutation,
    permuted,
    split_by_classes,
    stratified_split,
)
from lifelong.errors import ConfigError, DataError


def make_data(n_per_class: int = 20, n_classes: int = 6, shape: tuple[int, ...] = (4,)):
    """Inputs whose first feature is the row id, so every row can be traced through a split."""
    n = n_per_class * n_classes
    rng = np.random.default_rng(123)
    x = rng.normal(size=(n, *shape))
    x.reshape(n, -1)[:, 0] = np.arange(n)
    y = np.tile(np.arange(n_classes), n_per_class)
    return x, y


def row_ids(ex) -> list[int]:
    return ex["x"].reshape(ex.size, -1)[:, 0].round().long().tolist()


# ---------------------------------------------------------------------------
# stratified_split
# ---------------------------------------------------------------------------


def test_stratified_split_is_proportional_disjoint_and_seeded():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    tr, te = stratified_split(y, 0.2, seed=3)
    assert sorted(tr.tolist() + te.tolist()) == list(range(100))
    assert len(te) == 20
    assert torch.bincount(y[te]).tolist() == [10, 6, 4]
    tr2, te2 = stratified_split(y, 0.2, seed=3)
    assert torch.equal(te, te2) and torch.equal(tr, tr2)
    _, te3 = stratified_split(y, 0.2, seed=4)
    assert not torch.equal(te, te3)


def test_stratified_split_by_size_keeps_one_of_each_class_on_both_sides():
    y = torch.tensor([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2])
    tr, te = stratified_split(y, test_size=2, seed=0)
    assert set(y[tr].tolist()) == {0, 1, 2}  # the single '2' stays in train
    assert set(y[te].tolist()) <= {0, 1} and len(te) >= 2
    with pytest.raises(ConfigError, match="test_fraction"):
        stratified_split(y, 1.0)
    with pytest.raises(DataError, match="test_size"):
        stratified_split(y, test_size=11)


# ---------------------------------------------------------------------------
# split_by_classes
# ---------------------------------------------------------------------------


def test_split_by_classes_partitions_classes_and_rows():
    x, y = make_data()
    s = split_by_classes(x, y, n_tasks=3, class_order="sorted", seed=0)
    assert s.scenario == "class" and len(s) == 3 and s.num_classes == 6
    assert [t.classes for t in s] == [(0, 1), (2, 3), (4, 5)]
    assert s.input_shape == (4,)
    train_rows, test_rows = [], []
    for t in s:
        assert set(t.train["y"].tolist()) == set(t.classes) == set(t.test["y"].tolist())
        assert t.train["x"].dtype == torch.float32 and t.train["y"].dtype == torch.int64
        # every row keeps its own label (labels are global, not remapped)
        assert all(y[r] == lab for r, lab in zip(row_ids(t.train), t.train["y"].tolist()))
        train_rows += row_ids(t.train)
        test_rows += row_ids(t.test)
        # stratified 20%: 4 of each class's 20 rows are test rows
        assert torch.bincount(t.test["y"]).tolist()[min(t.classes):] == [4, 4]
    assert sorted(train_rows + test_rows) == list(range(120))
    assert len(set(train_rows) & set(test_rows)) == 0


def test_split_class_order_given_sorted_and_seeded_shuffle():
    x, y = make_data(n_per_class=5, n_classes=10)
    given = split_by_classes(x, y, classes_per_task=2, class_order=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    assert [t.classes for t in given] == [(8, 9), (6, 7), (4, 5), (2, 3), (0, 1)]
    assert given.info["class_order"] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    a = split_by_classes(x, y, n_tasks=5, seed=7)
    b = split_by_classes(x, y, n_tasks=5, seed=7)
    c = split_by_classes(x, y, n_tasks=5, seed=8)
    assert a.info["class_order"] == b.info["class_order"]
    assert sorted(a.info["class_order"]) == list(range(10))
    assert a.info["class_order"] != c.info["class_order"]
    for ta, tb in zip(a, b):
        assert torch.equal(ta.train["x"], tb.train["x"]) and torch.equal(ta.test["y"], tb.test["y"])


def test_split_uneven_sizes_subset_and_task_scenario():
    x, y = make_data(n_per_class=5, n_classes=10)
    s = split_by_classes(x, y, classes_per_task=[5, 1, 1, 1, 1, 1], class_order="sorted", scenario="task")
    assert [len(t.classes) for t in s] == [5, 1, 1, 1, 1, 1]
    assert s.scenario == "task" and s[5].classes == (9,)
    assert set(s[5].train["y"].tolist()) == {9}
    # n_tasks * classes_per_task < classes: only the first classes of the order are used
    sub = split_by_classes(x, y, n_tasks=2, classes_per_task=3, class_order="sorted")
    assert [t.classes for t in sub] == [(0, 1, 2), (3, 4, 5)]
    assert sub.num_classes == 6


def test_split_domain_scenario_relabels_within_task():
    x, y = make_data()
    s = split_by_classes(x, y, n_tasks=3, class_order=[1, 0, 3, 2, 5, 4], scenario="domain")
    assert s.num_classes == 2 and all(t.classes == (0, 1) for t in s)
    t = s[1]
    assert t.info["original_classes"] == [3, 2]
    orig = torch.as_tensor(y)[row_ids(t.train)]
    assert torch.equal(t.train["y"], (orig == 2).long())  # class 3 -> 0, class 2 -> 1


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(n_tasks=4), ["n_tasks=4", "[1, 2, 3, 6]"]),
        (dict(classes_per_task=4), ["classes_per_task=4", "6 classes"]),
        (dict(n_tasks=2, classes_per_task=4), ["8 classes", "only 6"]),
        (dict(n_tasks=3, class_order=[0, 1, 7]), ["[7]", "not in the data"]),
        (dict(n_tasks=3, class_order=[0, 0, 1]), ["more than once"]),
        (dict(n_tasks=0), ["n_tasks=0"]),
        (dict(n_tasks=3, scenario="incremental"), ["incremental", "task, domain, class"]),
        (dict(classes_per_task=[4, 2], scenario="domain"), ["equal sizes"]),
        (dict(), ["n_tasks or classes_per_task"]),
    ],
)
def test_split_bad_arguments_name_the_input(kwargs, words):
    x, y = make_data()
    with pytest.raises(DataError) as info:
        split_by_classes(x, y, **kwargs)
    assert isinstance(info.value, ConfigError)
    for w in words:
        assert w in str(info.value)


def test_bad_data_gives_data_errors():
    x, y = make_data()
    with pytest.raises(DataError, match="120 inputs but 119 labels"):
        split_by_classes(x, y[:-1], n_tasks=2)
    with pytest.raises(DataError, match="negative labels"):
        split_by_classes(x, y - 1, n_tasks=2)
    with pytest.raises(DataError, match="non-integer"):
        split_by_classes(x, y + 0.5, n_tasks=2)
    with pytest.raises(DataError, match="no labels"):
        split_by_classes(x, n_tasks=2)
    with pytest.raises(DataError, match="reserved"):
        split_by_classes(x, y, n_tasks=2, extra={"task": np.zeros(len(y))})
    with pytest.raises(DataError, match="rows but the data has 120"):
        split_by_classes(x, y, n_tasks=2, extra={"difficulty": np.zeros(3)})
    with pytest.raises(DataError, match="strings"):
        split_by_classes(x, y, n_tasks=2, extra={"note": np.array(["a"] * len(y))})


class PairDataset(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.as_tensor(self.x[i]), int(self.y[i])


def test_inputs_from_dataset_tensors_and_given_test_set_agree():
    x, y = make_data()
    xt, yt = torch.tensor(x), torch.tensor(y)
    test = (xt[:12], yt[:12])
    ref = split_by_classes(x, y, test=test, n_tasks=3, class_order="sorted")
    variants = [
        split_by_classes(PairDataset(x, y), test=PairDataset(x[:12], y[:12]), n_tasks=3, class_order="sorted"),
        split_by_classes(TensorDataset(xt, yt), test=TensorDataset(*test), n_tasks=3, class_order="sorted"),
        split_by_classes((xt, yt.double()), test=test, n_tasks=3, class_order="sorted"),
    ]
    for v in variants:
        for a, b in zip(ref, v):
            assert torch.equal(a.train["x"], b.train["x"]) and torch.equal(a.train["y"], b.train["y"])
            assert torch.equal(a.test["x"], b.test["x"])
            assert a.train["x"].dtype == torch.float32 and b.train["y"].dtype == torch.int64
    # the given test set is used as is: 12 rows, 2 per class
    assert sum(t.num_test for t in ref) == 12 and sum(t.num_train for t in ref) == 120


def test_extra_columns_ride_along_with_their_rows():
    x, y = make_data()
    difficulty = np.arange(120) / 10.0  # float64 -> float32
    level = np.arange(120) % 3
    s = split_by_classes(x, y, n_tasks=2, seed=1, extra={"difficulty": difficulty, "level": level})
    for t in s:
        for ex in (t.train, t.test):
            ids = torch.tensor(row_ids(ex))
            assert ex["difficulty"].dtype == torch.float32
            assert torch.allclose(ex["difficulty"], ids.float() / 10.0)
            assert torch.equal(ex["level"], ids % 3)
    # with a given test set, test_extra rides on the test side
    test = (x[:6], y[:6])
    s2 = split_by_classes(x, y, test=test, n_tasks=2, extra={"level": level}, test_extra={"level": level[:6]})
    assert "level" in s2[0].test and s2[0].test["level"].tolist() == [row % 3 for row in row_ids(s2[0].test)]


# ---------------------------------------------------------------------------
# permuted
# ---------------------------------------------------------------------------


def test_permutations_are_seeded_distinct_invertible_and_shape_preserving():
    x, y = make_data(shape=(2, 3, 3))
    a = permuted(x, y, n_tasks=4, seed=5)
    b = permuted(x, y, n_tasks=4, seed=5)
    c = permuted(x, y, n_tasks=4, seed=6)
    assert a.scenario == "domain" and a.input_shape == (2, 3, 3) and a.num_classes == 6
    perms = [torch.tensor(t.info["permutation"]) for t in a]
    assert all(sorted(p.tolist()) == list(range(18)) for p in perms)
    assert len({tuple(p.tolist()) for p in perms}) == 4  # distinct per task
    assert perms[0].tolist() != list(range(18))
    for ta, tb, tc in zip(a, b, c):
        assert torch.equal(ta.train["x"], tb.train["x"])  # same seed -> identical tensors
        assert not torch.equal(ta.train["x"], tc.train["x"])  # other seed -> other permutation/split
    base = torch.tensor(x, dtype=torch.float32)
    for t, p in zip(a, perms):
        ids = row_ids_flat_inverse(t.train["x"], p)
        original = base[ids]
        restored = t.train["x"].reshape(t.num_train, -1)[:, torch.argsort(p)].reshape(t.train["x"].shape)
        assert torch.equal(restored, original)
        assert torch.equal(apply_permutation(original, p), t.train["x"])
        assert torch.equal(t.train["y"], torch.as_tensor(y)[ids])
        assert t.classes == tuple(range(6))


def row_ids_flat_inverse(xp: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Row ids of permuted inputs: feature 0 of the original is at position argsort(p)[0]."""
    return xp.reshape(xp.shape[0], -1)[:, int(torch.argsort(p)[0])].round().long()


def test_permuted_options_first_unpermuted_prefix_and_class_scenario():
    x, y = make_data()
    s = permuted(x, y, n_tasks=3, first_unpermuted=True, seed=0)
    assert s[0].info["permutation"] == [0, 1, 2, 3] and s[0].info["permuted"] is False
    assert torch.equal(s[0].train["x"][:, 0], torch.tensor(row_ids(s[0].train), dtype=torch.float32))
    # a longer stream keeps the earlier tasks' permutations
    short, long = permuted(x, y, n_tasks=2, seed=9), permuted(x, y, n_tasks=5, seed=9)
    assert [t.info["permutation"] for t in short] == [t.info["permutation"] for t in long][:2]
    assert torch.equal(feature_permutation(4, 9, 1), torch.tensor(long[1].info["permutation"]))
    cls = permuted(x, y, n_tasks=3, scenario="class")
    assert cls.num_classes == 18 and cls[2].classes == tuple(range(12, 18))
    assert set(cls[2].test["y"].tolist()) == set(range(12, 18))
    with pytest.raises(ConfigError, match="n_tasks"):
        permuted(x, y, n_tasks=-1)


def test_permuted_carries_extra_columns_to_every_task():
    x, y = make_data()
    s = permuted(x, y, n_tasks=3, extra={"difficulty": np.arange(120) * 1.0})
    ref = s[0].train["difficulty"]
    assert all(torch.equal(t.train["difficulty"], ref) for t in s)


def test_fifty_permuted_tasks_are_cheap_and_distinct():
    x, y = make_data(n_per_class=10, n_classes=10, shape=(64,))
    s = permuted(x, y, n_tasks=50, seed=0)
    assert len(s) == 50 and len({tuple(t.info["permutation"]) for t in s}) == 50


# ---------------------------------------------------------------------------
# by_group
# ---------------------------------------------------------------------------


def test_by_group_one_task_per_group_sorted_and_stratified():
    x, y = make_data(n_per_class=30)
    names = np.array(["news", "code", "chat"])[(np.arange(180) // 6) % 3]  # every group has every label
    s = by_group(x, y, groups=names, seed=0)
    assert [t.name for t in s] == ["chat", "code", "news"]
    assert [t.info["group"] for t in s] == ["chat", "code", "news"]
    assert s.scenario == "domain" and all(t.classes == tuple(range(6)) for t in s)
    seen = []
    for t in s:
        for ex in (t.train, t.test):
            ids = row_ids(ex)
            assert set(names[ids].tolist()) == {t.name}
            seen += ids
        # each (group, label) stratum of 10 rows sends 2 to test
        assert torch.bincount(t.test["y"], minlength=6).tolist() == [2] * 6
    assert sorted(seen) == list(range(180))


def test_by_group_from_extra_column_with_order_and_test_set():
    x, y = make_data()
    skill = np.arange(120) % 4
    s = by_group(x, y, groups="skill", extra={"skill": skill}, order=[3, 1], scenario="class")
    assert [t.info["group"] for t in s] == [3, 1] and [t.name for t in s] == ["3", "1"]
    assert all(set(t.train["skill"].tolist()) == {t.info["group"]} for t in s)
    assert s.scenario == "class" and s[0].classes == tuple(sorted(set(y[skill == 3].tolist())))
    # separate test set; test_groups defaults to the same extra column
    test_x, test_y = x[:24], y[:24]
    s2 = by_group(x, y, groups="skill", extra={"skill": skill}, test=(test_x, test_y),
                  test_extra={"skill": skill[:24]})
    assert [t.num_test for t in s2] == [6, 6, 6, 6] and [t.num_train for t in s2] == [30] * 4
    with pytest.raises(ConfigError, match="group 7"):
        by_group(x, y, groups=skill, order=[7])
    with pytest.raises(DataError, match="test_groups"):
        by_group(x, y, groups=skill, test=(test_x, test_y))
    with pytest.raises(DataError, match="do not occur"):
        by_group(x, y, groups=skill, test=(test_x, test_y), test_groups=np.full(24, 9))
    with pytest.raises(DataError, match="names no column"):
        by_group(x, y, groups="domain")
