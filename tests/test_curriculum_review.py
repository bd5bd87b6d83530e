"""Review schedules: power-law ages and spaced-repetition intervals and recall."""

import pytest
import torch

from lifelong.curriculum.base import Feedback, PoolView
from lifelong.curriculum.review.power_law import PowerLawReview, power_law_probs
from lifelong.curriculum.review.spaced import SpacedReview, retrievability
from lifelong.errors import ConfigError


def memory(groups=3, per=10, num_groups=5):
    g = torch.arange(groups).repeat_interleave(per)
    return PoolView(groups * per, g, num_groups, None, [f"task{i}" for i in range(num_groups)])


def test_power_law_probabilities_hand_values():
    p = power_law_probs(torch.tensor([2.0, 1.0, 0.0]), torch.ones(3, dtype=torch.bool), 1.0, 1.0)
    assert p.tolist() == pytest.approx([2 / 11, 3 / 11, 6 / 11])   # weights 1/3, 1/2, 1


def test_power_law_review_ages_in_tasks():
    r = PowerLawReview(ratio=0.3, alpha=1.0)
    r.start(memory(), total_steps=100, seed=0)
    assert r.ages(0).tolist()[:3] == pytest.approx([2.0, 1.0, 0.0])   # newest group = task just finished
    assert r.fraction(100) == pytest.approx(0.3)
    probs = r.probs(100)
    assert probs.tolist()[:3] == pytest.approx([3 / 13, 4 / 13, 6 / 13])   # 1/4, 1/3, 1/2
    assert probs.tolist()[3:] == [0.0, 0.0]                                  # future tasks: nothing in memory
    w = r.weights(100)
    assert float(w[:10].sum()) == pytest.approx(3 / 13)
    assert r.log()["p/task2"] == pytest.approx(6 / 13)
    assert "p/task4" not in r.log()


def test_power_law_review_uses_given_ages_in_steps():
    pv = memory()
    pv.info["ages"] = [30.0, 10.0, 0.0, 0.0, 0.0]
    r = PowerLawReview(alpha=2.0, offset=10.0, unit="steps")
    r.start(pv, 100, 0)
    # (age + 10)^-2 at step 0: 1/1600, 1/400, 1/100
    assert r.probs(0).tolist()[:3] == pytest.approx([1 / 21, 4 / 21, 16 / 21])
    with pytest.raises(ConfigError, match="unit"):
        PowerLawReview(unit="days")


def test_retrievability_curve():
    assert retrievability(0, 50.0) == pytest.approx(1.0)
    assert retrievability(50, 50.0) == pytest.approx(0.9)          # R(S) = 0.9 by construction
    assert retrievability(150, 50.0) == pytest.approx(0.7661308776828737)   # (1 + 3 * 19/81) ** -0.5


def test_spaced_review_intervals_follow_quizzes():
    r = SpacedReview(quiz_size=2, base_interval=100, initial_stability=200, boxes=3, gain=1.0, lapse=0.5,
                     pass_at=0.9, min_stability=10)
    r.start(memory(), total_steps=500, seed=0)
    assert r.interval("task0") == pytest.approx(100)        # box 0: min(100 * 2^0, S = 200)
    r.update(Feedback(50, scores={0: 1.0, 1: 0.5}))           # first quiz sets the reference: both pass
    assert r.tasks["task0"]["box"] == 1 and r.interval("task0") == pytest.approx(200)  # min(200, S = 400)
    r.update(Feedback(100, scores={0: 1.0, 1: 0.25}))        # task1 recall 0.5 < 0.9: fail
    assert r.tasks["task1"]["box"] == 0
    # task1 was learned 500 steps before this task: elapsed 600 steps at recall 0.5; the curve through that
    # point has S = (19/81) * 600 / (0.5 ** -2 - 1) = 46.91, below 400 * lapse = 200
    assert r.tasks["task1"]["stability"] == pytest.approx(3800 / 81)
    assert r.interval("task1") == pytest.approx(3800 / 81)      # R reaches 0.9 before the Leitner interval
    assert r.recall("task1", 100) == pytest.approx(0.5)
    r.update(Feedback(150, scores={0: 1.0}))
    assert r.tasks["task0"]["box"] == 2 and r.tasks["task0"]["stability"] == pytest.approx(1600)
    r.update(Feedback(200, scores={0: 1.0}))
    assert r.tasks["task0"]["box"] == 2                        # top box
    log = r.log()
    assert {"interval/task0", "recall/task0", "interval/task2", "review_fraction"} <= set(log)
    assert "interval/task4" not in log


def test_spaced_review_fraction_follows_forgetting():
    r = SpacedReview(quiz_size=2, base_interval=100, initial_stability=200, min_fraction=0.05, max_fraction=0.6,
                     retention=0.9)
    pv = memory(1, 10, 1)
    r.start(pv, 1000, 0)
    assert r.fraction(0) == pytest.approx(0.05)        # nothing due
    assert r.fraction(99) == pytest.approx(0.05)
    # step 100: the Leitner interval elapsed; R = (1 + 19/81 * 0.5) ** -0.5 = 0.94606
    assert r.recall("task0", 100) == pytest.approx(0.946058996209746)
    assert r.fraction(100) == pytest.approx(0.3466755208463971)   # 0.05 + 0.55 * (1 - R) / 0.1
    assert r.fraction(200) == pytest.approx(0.6)                  # R(S) = 0.9: full forgetting signal


def test_spaced_review_holds_out_quiz_items_and_refreshes_on_dose():
    r = SpacedReview(quiz_size=3, dose=8, base_interval=100, initial_stability=200)
    pv = memory(3, 10, 5)
    r.start(pv, 1000, seed=4)
    q = r.quiz_indices()
    assert len(q) == 9
    assert torch.bincount(pv.groups[q], minlength=3).tolist() == [3, 3, 3]
    r.fraction(150)
    w = r.weights(150)
    assert float(w[q].sum()) == 0.0
    # at step 150 task2 (just learned, last = 0) and the older tasks are due; older ones need more review
    need = [float(w[pv.groups == g].sum()) for g in range(3)]
    assert need[0] > need[1] > need[2] > 0
    r.update(Feedback(150, torch.arange(8), torch.zeros(8), None, torch.zeros(8, dtype=torch.long)))
    assert r.tasks["task0"]["last"] == pytest.approx(r.now(150) - 0) and r.recall("task0", 150) == pytest.approx(1.0)
    assert r.due("task1", 150) and not r.due("task0", 150)


def test_spaced_review_keeps_its_model_across_tasks():
    r = SpacedReview(quiz_size=1, initial_stability=200)
    r.start(memory(1, 4, 3), 100, 0)
    r.update(Feedback(50, scores={0: 1.0}))
    assert r.tasks["task0"]["stability"] == pytest.approx(400)
    r.start(memory(2, 4, 3), 100, 0)
    assert r.clock_base == 100
    assert r.tasks["task0"]["stability"] == pytest.approx(400)
    assert r.tasks["task1"]["last"] == pytest.approx(100)   # just finished
    with pytest.raises(ConfigError, match="min_fraction"):
        SpacedReview(min_fraction=0.7, max_fraction=0.5)


def test_spaced_review_recall_is_bounded_by_the_last_quiz():
    """A replayed dose restarts the curve, but a failed quiz's measurement still bounds predicted recall."""
    def failed_then_dosed(bound):
        r = SpacedReview(quiz_size=2, dose=4, base_interval=100, initial_stability=200, min_stability=10,
                         lapse=0.5, min_fraction=0.05, max_fraction=0.6, bound_by_quiz=bound)
        r.start(memory(1, 10, 1), 1000, 0)
        r.update(Feedback(50, scores={0: 1.0}))       # reference 1.0: pass, S = 400
        r.update(Feedback(100, scores={0: 0.25}))     # recall 0.25: fail; fitted S = (19/81) 100 / 15 -> floor 10
        assert r.tasks["task0"]["stability"] == pytest.approx(10)
        # bounded: the quiz's 0.25; unbounded: the fitted curve, (1 + 19/81 * 100 / 10) ** -0.5
        assert r.recall("task0", 100) == pytest.approx(0.25 if bound else retrievability(100, 10))
        r.update(Feedback(101, torch.arange(4), torch.zeros(4), None, torch.zeros(4, dtype=torch.long)))  # a dose
        assert r.tasks["task0"]["last"] == pytest.approx(101)
        return r

    r = failed_then_dosed(True)
    # min(curve since the dose = 1, 0.25 * curve one step after the quiz with S = 10)
    assert r.recall("task0", 101) == pytest.approx(0.25 * (1 + 19 / 810) ** -0.5)
    assert r.due("task0", 101) and r.fraction(101) == pytest.approx(0.6)   # review stays at its maximum
    r.update(Feedback(150, scores={0: 1.0}))           # a passed quiz lifts the bound
    assert r.recall("task0", 150) == pytest.approx(retrievability(49, 20))   # S doubled to 20; curve since the dose
    old = failed_then_dosed(False)
    assert old.recall("task0", 101) == pytest.approx(1.0) and old.fraction(101) == pytest.approx(0.05)


def test_spaced_review_spread_mixes_priority_with_uniform_review():
    pv = memory(3, 10, 5)   # tasks studied 2000, 1000 and 0 steps ago (1000 steps per task)
    r0 = retrievability(2000, 200)   # (1 + 19/81 * 10) ** -0.5
    r1 = retrievability(1000, 200)
    need = [1 - r0, 1 - r1, 0.0]     # task2 was just learned: R = 1, interval not elapsed, not due
    for spread in (0.0, 0.5, 1.0):
        r = SpacedReview(quiz_size=2, base_interval=100, initial_stability=200, spread=spread)
        r.start(pv, 1000, seed=0)
        assert not r.due("task2", 0) and r.due("task0", 0) and r.due("task1", 0)
        w = r.weights(0).double()
        w = w / w.sum()
        shares = [float(w[pv.groups == g].sum()) for g in range(3)]
        want = [(1 - spread) * n / sum(need) + spread / 3 for n in need]
        assert shares == pytest.approx(want, abs=1e-5)   # (every present task keeps a 1e-6 floor)
        q = r.quiz_indices()
        assert float(w[q].sum()) == 0.0
        for g in range(3):   # within a task, the 8 trainable items are alike
            items = w[(pv.groups == g) & (r.trainable > 0)]
            assert len(items) == 8 and torch.allclose(items, items[0].expand(8))
    assert shares == pytest.approx([1 / 3] * 3)   # spread=1: exactly uniform replay over trainable items
    with pytest.raises(ConfigError, match="spread"):
        SpacedReview(spread=1.5)


def test_spaced_review_quiz_bound_survives_a_state_round_trip():
    r = SpacedReview(quiz_size=2, initial_stability=200)
    r.start(memory(2, 10, 3), 100, 0)
    r.update(Feedback(50, scores={0: 1.0, 1: 1.0}))
    r.update(Feedback(100, scores={0: 1.0, 1: 0.2}))
    twin = SpacedReview(quiz_size=2, initial_stability=200)
    twin.load_state_dict(r.state_dict())
    twin.pool = r.pool
    assert twin.recall("task1", 120) == pytest.approx(r.recall("task1", 120))
    assert twin.recall("task1", 120) <= 0.2
    assert torch.equal(twin.weights(120), r.weights(120))
