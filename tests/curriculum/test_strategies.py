"""Each strategy's update rule against values computed by hand from its formula."""
import itertools
import math

import numpy as np
import pytest

from curriculum import EventBatch, InvalidParams, ItemPool, TokenBudget, make_strategy
from curriculum.strategies.irt import ability_mle
from curriculum.strategies.posterior import allocate_budget


def pool2(n_per=10, prompts=None):
    return ItemPool([{"id": f"{c}{i}", "prompt": (prompts or {}).get(c, f"{c} {i}"), "category": c,
                      "difficulty": float(k)} for k, c in enumerate("ab") for i in range(n_per)])


def softmax(x, t=1.0):
    e = np.exp(np.asarray(x) / t - np.max(np.asarray(x) / t))
    return e / e.sum()


_version = itertools.count(1)


def batch(items, rewards, version=None):
    """A report of a new step (policy version) unless `version` is given."""
    return EventBatch.from_arrays(items, rewards, next(_version) if version is None else version)


@pytest.mark.parametrize("decay", [False, True])
def test_sec_q_values_after_two_steps(decay):
    s = make_strategy("sec", pool2(), {"alpha": 0.5, "tau": 1.0, "decay_unsampled": decay})
    s.observe(batch([0, 1], [[1, 0, 1, 0], [1, 1, 1, 1]]))  # arm a: |A| means 1 and 0 -> r_a = 0.5
    assert s.q.tolist() == pytest.approx([0.25, 0.0], abs=1e-5)
    s.observe(batch([10], [[1, 0, 0, 0]]))  # arm b: p = 1/4 -> mean|A| = 2 sqrt(3/16)
    r_b = 2 * math.sqrt(3 / 16)
    q_a = 0.125 if decay else 0.25
    assert s.q.tolist() == pytest.approx([q_a, 0.5 * r_b], abs=1e-5)
    assert s.arm_probs() == pytest.approx(softmax([q_a, 0.5 * r_b]), abs=1e-5)


def test_dump_ucb_with_known_window():
    s = make_strategy("dump", pool2(), {"window": 3, "c": 1.0, "temperature": 0.1})
    s.observe(batch([0, 10], [[1, 0, 1, 0], [1, 1, np.nan, np.nan]]))
    n_total = 6
    ucb_a = 1.0 + math.sqrt(2 * math.log(n_total + 1) / (4 + 1))
    ucb_b = 0.0 + math.sqrt(2 * math.log(n_total + 1) / (2 + 1))
    assert s.arm_values().tolist() == pytest.approx([ucb_a, ucb_b], abs=1e-4)
    assert s.arm_probs() == pytest.approx(softmax([ucb_a, ucb_b], 0.1), abs=1e-4)
    # the window keeps only the last 3 responses of arm a: three zeros push its mean to 0
    s.observe(batch([1], [[1, 1, 1]]))
    assert s.arm_values()[0] == pytest.approx(0 + math.sqrt(2 * math.log(10) / 8), abs=1e-4)


def test_dump_uniform_share_mixes_in_arm_sizes():
    """uniform_share f: p' = (1 - f) softmax(UCB / T) + f |arm| / |pool|; a starved arm keeps its floor share."""
    pool = ItemPool([{"id": f"a{i}", "prompt": f"a {i}", "category": "a"} for i in range(30)]
                    + [{"id": f"b{i}", "prompt": f"b {i}", "category": "b"} for i in range(10)])
    plain = make_strategy("dump", pool, {"window": 3, "temperature": 0.1})
    floored = make_strategy("dump", pool, {"window": 3, "temperature": 0.1, "uniform_share": 0.4})
    for s in (plain, floored):  # arm a informative, arm b all-0 (a level the policy rarely solves)
        s.observe(batch([0, 30], [[1, 0, 1, 0], [0, 0, 0, 0]]))
    p = plain.arm_probs()
    assert p[1] < 0.01
    assert floored.arm_probs() == pytest.approx(0.6 * p + 0.4 * np.array([0.75, 0.25]), abs=1e-9)
    assert floored.arm_probs()[1] > 0.1


def test_learning_progress_on_known_sequence():
    s = make_strategy("progress", pool2(), {"beta_fast": 0.5, "beta_slow": 0.25, "eps": 0.2})
    s.observe(batch([0, 10], [[0, 0], [1, 1]]))  # first observation initialises both EMAs
    s.observe(batch([1, 11], [[1, 1], [1, 1]]))  # arm a: fast 0.5, slow 0.25 -> LP 0.25; arm b: LP 0
    assert s.fast.tolist() == pytest.approx([0.5, 1.0]) and s.slow.tolist() == pytest.approx([0.25, 1.0])
    assert s.arm_values().tolist() == pytest.approx([0.25, 0.0])
    assert s.arm_probs().tolist() == pytest.approx([0.8 + 0.1, 0.1])


def test_arm_draw_frequencies_follow_probabilities():
    s = make_strategy("sec", pool2(n_per=500), {"tau": 0.5}, seed=3)
    s.q[:] = [0.0, 0.5]
    p = s.arm_probs()
    counts = np.zeros(2)
    for _ in range(50):
        sel = s.select(40)
        counts += np.bincount(s.pool.category[sel.indices], minlength=2)
    assert counts[1] / counts.sum() == pytest.approx(p[1], abs=0.03)


def test_schedule_competence_and_eligible_items():
    pool = ItemPool([{"id": f"q{i}", "prompt": "p", "difficulty": float(9 - i)} for i in range(10)])
    s = make_strategy("schedule", pool, {"kind": "root", "c0": 0.2, "horizon": 10})
    assert s.competence(0) == pytest.approx(0.2)
    assert s.competence(5) == pytest.approx(math.sqrt(5 * (1 - 0.04) / 10 + 0.04))
    assert s.competence(10) == 1.0
    assert sorted(s.eligible().tolist()) == [8, 9]  # the two easiest (difficulty 1 and 0)
    assert set(s.select(5).indices.tolist()) == {8, 9}
    lin = make_strategy("schedule", pool, {"kind": "linear", "c0": 0.2, "horizon": 10})
    assert lin.competence(4) == pytest.approx(0.2 + 4 * 0.8 / 10)
    cyc = make_strategy("schedule", pool, {"kind": "cyclical", "c0": 0.5, "period": 4})
    assert [cyc.competence(t) for t in range(5)] == pytest.approx([0.5, 0.625, 0.75, 0.875, 0.5])


def test_token_budget_schedule_is_carried_by_selections():
    b = TokenBudget(b0=1024, b_min=200, gamma=0.5, period=2)
    assert [b.at(t) for t in range(8)] == [1024, 1024, 512, 512, 256, 256, 200, 200]
    s = make_strategy("uniform", pool2(), {"token_budget": {"b0": 64, "b_min": 16, "gamma": 0.5, "period": 1}})
    assert s.select(2).max_tokens == 64
    s.observe(batch([0], [[1, 0]]))
    assert s.select(2).max_tokens == 32
    assert make_strategy("sec", pool2()).select(2).max_tokens is None


def test_filter_explores_unseen_then_keeps_band():
    s = make_strategy("filter", pool2(n_per=5), {"low": 0.2, "high": 0.8})
    s.observe(batch([0, 1, 2, 3], [[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 0]]))
    cand = np.arange(10)
    assert set(s.choose(6, cand).tolist()) == {4, 5, 6, 7, 8, 9}  # six unseen first
    assert set(s.choose(8, cand).tolist()) == {4, 5, 6, 7, 8, 9, 1, 3}  # then in-band (0.5, 0.75)
    assert s.choose(10, cand).tolist()[-2:] in ([0, 2], [2, 0])  # out-of-band last
    s.observe(batch([1], [[1, 1, 1, 1]]))  # EMA with beta 0.5: 0.5 -> 0.75
    assert s.p_est[1] == pytest.approx(0.75)


def test_posterior_allocation_hands_out_remainders_as_one_at_a_time_would():
    """The largest-remainder rounding in one sort gives what handing out one rollout at a time (the largest
    remainder among items with room, the first on ties) gives, ties and clipped items included."""
    def one_at_a_time(x, budget, lo, hi):
        out = np.clip(np.floor(x), lo, hi).astype(np.int64)
        frac = x - np.floor(x)
        while out.sum() < budget:
            k = int(np.argmax(np.where(out < hi, frac, -np.inf)))
            out[k], frac[k] = out[k] + 1, -1
        while out.sum() > budget:
            k = int(np.argmin(np.where(out > lo, frac, np.inf)))
            out[k], frac[k] = out[k] - 1, 2
        return out
    rng = np.random.default_rng(0)
    for t in range(300):
        n, lo = int(rng.integers(1, 30)), int(rng.integers(1, 4))
        hi = lo + int(rng.integers(0, 6))
        sigma = np.round(rng.random(n), 1 if t % 2 else 6)  # rounded: many equal remainders
        budget = int(np.clip(rng.integers(n * lo, n * hi + 1), n * lo, n * hi))
        w = sigma + 1e-9
        x = budget * w / w.sum()
        if (x >= lo).all() and (x <= hi).all():  # no clipping: the rounding alone decides
            assert allocate_budget(sigma, budget, lo, hi).tolist() == one_at_a_time(x, budget, lo, hi).tolist()
        got = allocate_budget(sigma, budget, lo, hi)
        assert got.sum() == budget and got.min() >= lo and got.max() <= hi


def test_posterior_weights_and_allocation():
    s = make_strategy("posterior", pool2(n_per=2), {"t_scale": 1.0, "n_min": 2, "n_max": 12}, group_size=6)
    s.observe(batch([0, 1], [[1] * 8, [1, 0] * 4]))
    p = np.array([9 / 10, 5 / 10, 0.5, 0.5])  # (s + 1) / (N + 2); unseen -> 1/2
    assert s.sigma(np.arange(4)) == pytest.approx(np.sqrt(p * (1 - p)))
    # the CurES code's per-item temperature t_i = (s_i + 1) / t_scale: successes 8, 4, 0, 0
    t = np.array([9.0, 5.0, 1.0, 1.0]) / 1.0
    assert s.log_weights(np.arange(4)) == pytest.approx(np.sqrt(p * (1 - p)) / t)
    alloc = s.allocate(np.arange(4))
    assert alloc.sum() == 24 and alloc.min() >= 2 and alloc.max() <= 12
    assert alloc[0] < alloc[1]  # fewer rollouts for the near-certain item
    assert allocate_budget(np.array([0.5, 0.5, 0.1, 0.0]), 32, 2, 16).tolist() == [14, 13, 3, 2]
    assert allocate_budget(np.array([0.5, 0.4, 0.3, 0.01]), 32, 2, 10).tolist() == [10, 10, 10, 2]
    # selection frequency follows exp(sigma_i / t_i): the often-solved item is picked least
    picks = np.zeros(4)
    for seed in range(300):
        s.rng = np.random.default_rng(seed)
        picks[s.choose(1, np.arange(4))] += 1
    assert picks[0] < picks[2] and picks[1] < picks[2]


def test_posterior_defaults_follow_the_cures_code():
    s = make_strategy("posterior", pool2(n_per=2))
    assert (s.params.t_scale, s.params.n_min, s.params.n_max) == (0.01, 4, 8)
    s.observe(batch([0], [[1, 1, 1, 0]]))  # s = 3: t = 4 / 0.01 = 400, sigma = sqrt(4/6 * 2/6)
    assert s.log_weights(np.array([0]))[0] == pytest.approx(math.sqrt(8 / 36) / 400)


def test_filter_keeps_filtering_when_every_estimate_is_old():
    """30k items with pass rates 0 / 0.5 / 1, all measured long ago (pool / batch >> max_age): the band
    still picks only the p = 0.5 items (stale out-of-band ones come after them)."""
    n = 30_000
    pool = ItemPool([{"id": str(i), "prompt": "p"} for i in range(n)])
    s = make_strategy("filter", pool, {"max_age": 50}, seed=0)
    rewards = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])[np.arange(n) % 3]
    s.observe(batch(np.arange(n), rewards))
    for _ in range(60):  # 60 later steps that touch one item each: every estimate is now older than max_age
        s.observe(batch([0], [[0.0, 0.0]]))
    picks = s.select(64).indices
    assert len(picks) == 64 and (picks % 3 == 1).all()
    # an out-of-band stale item comes before a fresh out-of-band one, closest to the band first
    s.observe(batch([3], [[0.0, 0.0]]))  # item 3: fresh, p = 0
    s.p_est[6] = 0.1  # stale, just below the band
    assert s.choose(3, np.array([3, 9, 6])).tolist() == [6, 9, 3]  # 9: stale, p = 0


def test_pcl_dim_bits_changed_live_then_select():
    s = make_strategy("pcl", pool2(), seed=0)
    s.observe(batch([0, 1], [[1, 0], [1, 1]]))
    for bits in (16, 6):  # larger (used to raise IndexError), then smaller
        s.set_params({"dim_bits": bits})
        assert len(s.select(4)) == 4 and len(s.w) == 1 << bits  # the value model restarts at the new size
        s.observe(batch([2], [[1, 0]]))
        assert len(s.w) == 1 << bits


def test_irt_ability_mle_and_selection():
    assert ability_mle(np.array([0.0]), np.array([3.0]), np.array([4.0])) == pytest.approx(math.log(3), abs=1e-6)
    b, s_, n = np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([2.0, 2.0])
    theta = ability_mle(b, s_, n)
    p = 1 / (1 + np.exp(-(theta - b)))
    assert np.sum(s_ - n * p) == pytest.approx(0, abs=1e-8)  # the score equation holds
    assert theta == pytest.approx(0.5, abs=1e-6)  # symmetric around the two difficulties
    pool = ItemPool([{"id": f"q{i}", "prompt": "p", "difficulty": float(i)} for i in range(6)])
    irt = make_strategy("irt", pool)
    irt.theta = 2.4
    assert irt.choose(3, np.arange(6)).tolist() == [2, 1, 0]  # at/below theta, closest first
    assert irt.choose(4, np.arange(6)).tolist() == [2, 1, 0, 3]  # then the easiest above


def test_pcl_value_model_learns_and_targets_middle():
    kinds = ["easy", "hard", "mid"]
    pool = ItemPool([{"id": f"q{i}", "prompt": f"{kinds[i % 3]} question {i}"} for i in range(1500)])
    truth = np.array([0.9, 0.1, 0.5])[np.arange(1500) % 3]
    s = make_strategy("pcl", pool, seed=0)
    rng = np.random.default_rng(0)
    probe = np.arange(300)

    def err():
        return float(np.mean((s.predict(probe) - truth[probe]) ** 2))

    e0 = err()
    for _ in range(40):
        idx = rng.choice(1500, 64, replace=False)
        s.observe(batch(idx, (rng.random((64, 8)) < truth[idx, None]).astype(float)))
    assert err() < e0 / 4
    sel = s.select(64).indices
    assert np.mean(sel % 3 == 2) > 0.9  # the 0.5 prompts, found without rolling out the others


def test_compose_draws_arms_by_arm_strategy_and_items_by_item_strategy():
    s = make_strategy("compose", pool2(n_per=20), {"arm": {"name": "sec", "params": {"tau": 0.01}},
                                                     "item": {"name": "filter"}})
    s.observe(batch([0, 1, 20], [[1, 0, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]))
    assert s.arm.q[0] > s.arm.q[1]
    sel = s.select(10).indices
    assert (s.pool.category[sel] == 0).all()  # tau -> 0: all from arm a
    assert 1 not in sel.tolist()  # the all-correct item is out of band; unseen ones come first
    assert s.describe()["arms"][0]["weight"] == pytest.approx(1.0)


@pytest.mark.parametrize("name,params,field", [
    ("sec", {"alpha": 2}, "strategy.params.alpha"),
    ("dump", {"window": 0}, "strategy.params.window"),
    ("filter", {"low": 0.9, "high": 0.1}, "strategy.params"),
    ("posterior", {"bogus": 1}, "strategy.params.bogus"),
    ("compose", {"arm": {"name": "filter"}}, "strategy.params.arm"),
    ("compose", {"item": {"name": "sec"}}, "strategy.params.item"),
    ("schedule", {"kind": "zigzag"}, "strategy.params.kind"),
    ("uniform", {"token_budget": {"b0": 10, "b_min": 20}}, "strategy.params.token_budget"),
])
def test_invalid_params_name_the_field(name, params, field):
    with pytest.raises(InvalidParams) as e:
        make_strategy(name, pool2(), params)
    assert field in str(e.value)


def test_unknown_strategy_lists_known_ones():
    with pytest.raises(InvalidParams) as e:
        make_strategy("nope", pool2())
    assert "strategy.name" in str(e.value) and "uniform" in str(e.value)


def test_noise_guard_caps_noise_but_not_a_plateaued_level():
    """Arm `a`: items of fixed but different pass rates (a learnable level that has plateaued: no progress,
    but its prompts differ). Arm `n`: a coin whatever the prompt. Only `n` is judged noise and capped at
    floor / arms; with the guard off nothing is."""
    pool = ItemPool([{"id": f"{c}{i}", "prompt": f"{c} {i}", "category": c} for c in "an" for i in range(50)])
    p = np.concatenate([np.linspace(0.15, 0.85, 50), np.full(50, 0.5)])
    rng = np.random.default_rng(0)
    on, off = make_strategy("dump", pool), make_strategy("dump", pool, {"noise_guard": {"enabled": False}})
    for v in range(40):
        idx = rng.choice(100, 20, replace=False)
        b = batch(idx, (rng.random((20, 8)) < p[idx, None]).astype(float), version=v)
        on.observe(b)
        off.observe(b)
    assert on.noise_gate().tolist() == [False, True]
    phi = on.dispersion()
    assert phi[0] > 2 and abs(phi[1] - 1) < 0.4, phi
    assert on.gated_arm_probs()[1] == pytest.approx(min(on.arm_probs()[1], 0.15 / 2))
    assert off.noise_gate().tolist() == [False, False]
    assert on.describe()["details"]["noise_arms"] == ["n"]


@pytest.mark.parametrize("name", ["filter", "pcl", "posterior", "irt"])
def test_item_level_selection_keeps_its_size_when_arms_are_judged_noise(name):
    """Every arm judged noise (all coins), or all but a tiny one: a selection still returns n items."""
    pool = ItemPool([{"id": f"{c}{i}", "prompt": f"{c} {i}", "category": c}
                     for c, k in (("a", 300), ("b", 300), ("t", 3)) for i in range(k)])
    s = make_strategy(name, pool, seed=0)
    rng = np.random.default_rng(0)
    for v in range(30):
        idx = rng.choice(600, 40, replace=False)
        s.observe(batch(idx, (rng.random((40, 8)) < 0.5).astype(float), version=v))
    assert s.noise_gate()[:2].all()
    assert len(s.select(64)) == 64


def test_candidate_count_has_one_name_and_pcl_accepts_k():
    from curriculum.registry import validate_params

    for name in ("filter", "pcl", "posterior", "irt"):
        assert "candidates" in validate_params(name, {}).model_dump()
    assert validate_params("pcl", {"k": 6}).candidates == 6  # the old name still works
    pool = ItemPool([{"id": f"q{i}", "prompt": f"{i}", "category": "a"} for i in range(50)])
    s = make_strategy("pcl", pool, {"k": 3})
    assert s.candidate_count(5) == 15
    assert s.set_params({"k": 5}).candidates == 5 and s.set_params({"candidates": 2}).candidates == 2
    assert "k" not in s.params.model_dump()


def test_target_only_draws_only_the_named_arms_and_uniform_guard_follows_arm_sizes():
    pool = ItemPool([{"id": f"{c}{i}", "prompt": f"{c} {i}", "category": c}
                     for c, n in (("a", 30), ("b", 10), ("c", 20)) for i in range(n)])
    oracle = make_strategy("target_only", pool, {"arms": ["b", "c"]}, seed=1)
    assert oracle.arm_probs() == pytest.approx([0.0, 1 / 3, 2 / 3])
    picked = oracle.select(25).indices
    assert len(picked) == 25 and {pool.categories[pool.category[i]] for i in picked} <= {"b", "c"}
    guard = make_strategy("uniform_guard", pool, {}, seed=1)
    assert guard.arm_probs() == pytest.approx([0.5, 1 / 6, 1 / 3])
    with pytest.raises(InvalidParams):
        make_strategy("target_only", pool, {"arms": "b", "extra": 1})
