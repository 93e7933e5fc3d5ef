"""GAIN-RL (`gain`) and the per-item `features` that carry the policy's own signal: the sampling follows the
Gaussian over the items sorted by concentration, the center moves as the paper's rule says, and features travel
from a report (validated, logged, replayed) to the strategy."""
import math

import numpy as np
import pytest
from pydantic import ValidationError

from curriculum import EventBatch, ItemPool, codec, make_strategy
from curriculum.events import RewardEvent
from curriculum.experiment import ExperimentConfig, ExperimentState, InvalidReport, replay

CHI2_99 = {19: 36.191, 41: 64.950}  # chi-square 0.99 quantiles (no scipy in the base environment)


def pool(n=20, meta=None):
    return ItemPool([{"id": f"q{i}", "prompt": f"{i}+1=", **({"metadata": meta(i)} if meta else {})}
                     for i in range(n)])


def with_angles(s, angles, version=1, rewards=None):
    """One step reporting every item once, with its angle."""
    n = len(angles)
    s.observe(EventBatch.from_arrays(list(range(n)), rewards if rewards is not None else [[1, 0]] * n, version,
                                     features={"angle": np.asarray(angles, dtype=float)[:, None]}))


def draw_histogram(s, draws):
    counts = np.zeros(s.pool.size)
    for _ in range(draws):
        counts[s.select(1).indices[0]] += 1
    return counts


def chi2(counts, p):
    expect = counts.sum() * p
    return float(((counts - expect) ** 2 / expect).sum())


def test_sampling_follows_the_gaussian_over_the_sorted_order():
    n, mu, sigma = 20, 0.3, 0.3
    s = make_strategy("gain", pool(n), {"mu0": mu, "sigma": sigma, "step": 0.0}, seed=1)
    angles = np.random.default_rng(0).permutation(n) / n  # distinct concentrations, items in scrambled order
    with_angles(s, angles)
    assert s.mu == mu  # step = 0: the center stays put
    rank = np.argsort(np.argsort(-angles))  # 0 = the highest concentration
    p = np.exp(-0.5 * ((rank / n - mu) / sigma) ** 2)
    p /= p.sum()
    counts = draw_histogram(s, 10_000)
    assert chi2(counts, p) < CHI2_99[19]
    assert chi2(counts, np.full(n, 1 / n)) > 5 * CHI2_99[19]  # and it is not uniform: the test can fail
    mirrored = p[::-1]  # the same Gaussian over the order lowest-first: the direction of the sort matters
    assert chi2(counts, mirrored) > 5 * CHI2_99[19]
    assert rank[np.argmax(counts)] in (5, 6, 7) and rank[np.argmin(counts)] in (18, 19)


def test_selection_is_without_replacement_and_honours_exclusions():
    s = make_strategy("gain", pool(30), {"sigma": 0.05}, seed=2)
    with_angles(s, np.linspace(1, 0, 30))
    exclude = np.zeros(30, dtype=bool)
    exclude[:5] = True
    sel = s.select(25, exclude)
    assert sorted(sel.indices.tolist()) == list(range(5, 30))


def test_unmeasured_items_lead_the_order_and_no_feature_means_uniform():
    s = make_strategy("gain", pool(20), {}, seed=3)
    assert s.details()["fallback"].startswith("uniform")
    counts = draw_histogram(s, 4000)
    assert chi2(counts, np.full(20, 1 / 20)) < CHI2_99[19]
    s.observe(EventBatch.from_arrays([0, 1, 2], [[1, 0]] * 3, 1, features={"angle": [[0.1], [0.9], [0.5]]}))
    pos = s.positions() * 20
    assert sorted(pos[3:].tolist()) == list(range(17))  # the 17 unmeasured items first
    assert [pos[1], pos[2], pos[0]] == [17, 18, 19]  # then by concentration, highest first
    assert "fallback" not in s.details() and s.details()["measured"] == 3


def test_an_offline_ranking_in_item_metadata_is_the_prior():
    s = make_strategy("gain", pool(10, meta=lambda i: {"angle": i / 10} if i < 8 else {"src": "x"}))
    assert np.isnan(s.angle[8:]).all() and s.angle[:8].tolist() == pytest.approx([i / 10 for i in range(8)])
    with_angles(s, [0.5] * 10)  # a reported concentration replaces the prior
    assert s.angle.tolist() == [0.5] * 10


def test_center_moves_by_accuracy_and_mean_angle():
    # METHODS §A5: n = 500, alpha = 2, beta = 0.5, acc = 0.6, angle = 0.2 -> delta = 500 tanh(0.2) + 500 tanh(0.4)
    n_pool = 1000
    s = make_strategy("gain", pool(n_pool), {"step": 0.5, "adj_max": 1.0})
    rewards = [[1, 1, 1, 0, 0]] * 10  # accuracy 0.6
    s.observe(EventBatch.from_arrays(list(range(10)), rewards, 1, features={"angle": [[0.1], [0.3]] * 5}))
    expect = 500 * math.tanh(0.2) + 500 * math.tanh(0.4)
    assert expect == pytest.approx(288.7, abs=0.1)
    assert s.mu * n_pool == pytest.approx(expect, rel=1e-9)
    # accuracy 0, angle 0: the move would be negative; adj_min = 0 keeps the center where it is (monotone)
    s.observe(EventBatch.from_arrays([20, 21], [[0, 0], [0, 0]], 2, features={"angle": [[0.0], [0.0]]}))
    assert s.mu * n_pool == pytest.approx(expect)
    # no angle reported: the accuracy term alone; clipped at adj_max
    s.observe(EventBatch.from_arrays([30], [[1, 1]], 3))
    assert s.details()["last_angle"] is None
    assert s.mu * n_pool == pytest.approx(expect + 500 * math.tanh(1.0))
    capped = make_strategy("gain", pool(n_pool), {"step": 0.5, "adj_max": 0.1})
    capped.observe(EventBatch.from_arrays([0], [[1, 1]], 1, features={"angle": [[0.9]]}))
    assert capped.mu == pytest.approx(0.1)


def test_accuracy_halving_reproduces_the_trl_quirk():
    s = make_strategy("gain", pool(100), {"acc_halving": True, "adj_min": -1.0})
    s.observe(EventBatch.from_arrays([0], [[1, 1]], 1))  # accuracy 1 counts as 0.5: the accuracy term is 0
    assert s.mu == pytest.approx(0.0, abs=1e-12)


def test_a_step_in_several_reports_equals_one_report():
    def run(parts):
        s = make_strategy("gain", pool(40), {}, seed=5)
        for p in parts:
            s.observe(p)
        return s
    angles = np.linspace(0.9, 0.1, 12)[:, None]
    full = EventBatch.from_arrays(list(range(12)), [[1, 0, 1]] * 6 + [[0, 0, 0]] * 6, 4, features={"angle": angles})
    one = run([full])
    many = run([full.subset(np.arange(12) % 3 == k) for k in (2, 0, 1)])
    assert one.mu == many.mu and np.array_equal(one.angle, many.angle, equal_nan=True)
    assert one.select(10).indices.tolist() == many.select(10).indices.tolist()
    restored = make_strategy("gain", pool(40), {}, seed=99)
    restored.load_state_dict(codec.decode(codec.encode(one.state_dict())))
    assert restored.describe() == one.describe()


# -- the features field --------------------------------------------------------------------------------
@pytest.mark.parametrize("bad,msg", [
    ({"angle": float("nan")}, "finite"),
    ({"angle": [0.1, float("inf")]}, "features['angle'][1] is inf"),
    ({"Angle": 1.0}, "must match"),
    ({"embedding": []}, "1 to 4096"),
    ({"embedding": [0.0] * 4097}, "1 to 4096"),
    ({"angle": "high"}, "a number or a list of numbers"),
    ({"angle": True}, "a number or a list of numbers"),
    ({"angle": 10**400}, "out of the range of a float"),
    ({f"f{i}": 1.0 for i in range(9)}, "at most 8"),
])
def test_bad_features_are_rejected_with_a_clear_message(bad, msg):
    with pytest.raises(ValidationError) as e:
        RewardEvent(item_id="q1", rewards=[1.0], features=bad)
    assert msg in str(e.value)


def test_features_in_a_batch_survive_subset_concat_and_the_snapshot_form():
    events = [RewardEvent(item_id="a", rewards=[1, 0], features={"angle": 0.25, "embedding": [1.0, 2.0]}),
              RewardEvent(item_id="b", rewards=[1])]
    b = EventBatch.from_events(events, [0, 1])
    vals, present = b.feature("embedding")
    assert vals[0].tolist() == [1.0, 2.0] and present.tolist() == [True, False]
    again = EventBatch.from_dict(codec.decode(codec.encode(b.to_dict())))
    assert all(np.array_equal(again.features[k], b.features[k], equal_nan=True) for k in b.features)
    wide = EventBatch.concat([b, EventBatch.from_arrays([2], [[0]], features={"embedding": [[1.0, 2.0, 3.0]]})])
    assert wide.features["embedding"].shape == (3, 3) and wide.feature("embedding")[1].tolist() == [False] * 2 + [True]
    # the canonical order depends on the features too: the same rows in any order fold the same
    two = EventBatch.from_arrays([5, 5], [[1], [1]], features={"angle": [[0.7], [0.2]]})
    flipped = two.subset(np.array([1, 0]))
    assert two.canonical().features["angle"].tolist() == flipped.canonical().features["angle"].tolist()


def experiment(name="gain"):
    cfg = ExperimentConfig(name="e", strategy=name, seed=1)
    return cfg, ExperimentState(cfg, [{"id": f"q{i}", "prompt": f"{i}+1="} for i in range(20)])


def test_reported_features_reach_the_strategy_and_replay_from_the_log():
    cfg, st = experiment()
    out = st.apply({"op": "lease", "n": 4, "worker": "w", "lease_seconds": 60, "now": 0.0, "batch_id": "b1"})
    results = [RewardEvent(item_id=it["id"], rewards=[1, 0], policy_version=1, rollout_id=f"r{k}",
                           features={"angle": 0.1 * (k + 1), "embedding": [float(k), 1.0]})
               for k, it in enumerate(out["items"])]
    st.validate_report(results)
    logged = {"op": "report", "now": 1.0, "results": [r.model_dump(mode="json", exclude_defaults=True)
                                                       for r in results]}
    st.apply({**logged, "results": results})
    idx = st.pool.indices_of([it["id"] for it in out["items"]])
    assert st.strategy.angle[idx].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert st.describe()["details"]["last_angle"] == pytest.approx(0.25)
    lease = {"op": "lease", "n": 4, "worker": "w", "lease_seconds": 60, "now": 0.0, "batch_id": "b1"}
    again = replay(cfg, [lease, codec.decode(codec.encode(logged))], st.pool.to_items())
    assert again.describe() == st.describe()


def test_a_feature_whose_length_changes_within_a_report_is_rejected_and_changes_nothing():
    _, st = experiment()
    before = codec.encode(st.state_dict())
    results = [RewardEvent(item_id="q1", rewards=[1.0], features={"embedding": [1.0, 2.0]}),
               RewardEvent(item_id="q2", rewards=[1.0], features={"embedding": [1.0, 2.0, 3.0]})]
    with pytest.raises(InvalidReport, match=r"results\[1\]\.features\.embedding: 3 numbers, but results\[0\] sent 2"):
        st.validate_report(results)
    assert codec.encode(st.state_dict()) == before


def test_the_simulators_synthetic_angle_reaches_gain():
    from curriculum.simulator import SimConfig, SimulatedStudent, _step

    cfg = SimConfig(categories=2, noisy=1, items_per_category=30, angle_noise=0.0, angle_offline=False)
    student = SimulatedStudent(cfg, 0)
    learnable = ~student.noisy
    assert np.allclose(student.angle[learnable], student.pass_prob()[learnable])  # noise 0: the pass rate itself
    s = make_strategy("gain", ItemPool(student.items()), {}, seed=0)
    assert s.details()["measured"] == 0  # online: known once reported
    reports = _step(s, student, cfg, 16, 1, np.random.default_rng(0))
    idx = np.concatenate([sel.indices for sel, _ in reports])
    assert s.details()["measured"] == 16 and np.allclose(s.angle[idx], student.angle[idx])
    offline = SimulatedStudent(cfg.model_copy(update={"angle_offline": True}), 0)
    assert make_strategy("gain", ItemPool(offline.items()), {}).details()["measured"] == 90


# -- the O(batch) sampler and the incrementally sorted order ----------------------------------------
def test_the_rank_sampler_draws_ordered_pairs_as_gumbel_top_k_over_the_whole_pool():
    """select(2) from 8 items, one excluded: each ordered pair (i, j) comes with the Plackett-Luce probability
    w_i / W * w_j / (W - w_i) over the eligible items (what Gumbel-top-k gives), through the rank sampler."""
    n = 8
    s = make_strategy("gain", pool(n), {"mu0": 0.2, "sigma": 0.25, "step": 0.0}, seed=11)
    angles = np.random.default_rng(1).permutation(n) / n
    with_angles(s, angles)
    exclude = np.zeros(n, dtype=bool)
    exclude[int(np.argmax(angles))] = True  # the top-ranked item: the sampler must skip it, not renormalise it
    rank = np.argsort(np.argsort(-angles))
    w = np.where(exclude, 0.0, np.exp(-0.5 * ((rank / n - 0.2) / 0.25) ** 2))
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j and not exclude[i] and not exclude[j]]
    p = np.array([w[i] / w.sum() * w[j] / (w.sum() - w[i]) for i, j in pairs])
    counts = dict.fromkeys(pairs, 0)
    for _ in range(20_000):
        a, b = s.select(2, exclude).indices.tolist()
        counts[(a, b)] += 1
    obs = np.array([counts[q] for q in pairs], dtype=float)
    assert len(pairs) == 42 and chi2(obs, p) < CHI2_99[41]
    assert chi2(obs, np.full(len(pairs), 1 / len(pairs))) > 5 * CHI2_99[41]  # not uniform: the test can fail


def test_a_mostly_excluded_pool_falls_back_to_the_exact_draw():
    s = make_strategy("gain", pool(400), {"sigma": 0.01, "step": 0.0}, seed=4)
    with_angles(s, np.linspace(1, 0, 400))
    exclude = np.ones(400, dtype=bool)
    exclude[[390, 391, 399]] = False  # the eligible items lie ~99 sigma from the center: weights underflow to 0
    assert sorted(s.select(3, exclude).indices.tolist()) == [390, 391, 399]


def test_the_order_kept_incrementally_equals_a_fresh_sort():
    """Concentrations changed step by step (ties included) refile items exactly where sorting the pool again puts
    them; a restored strategy, which sorts afresh, reads the same positions."""
    rng = np.random.default_rng(3)
    s = make_strategy("gain", pool(300), {}, seed=8)
    for v in range(1, 30):
        items = rng.choice(300, size=25, replace=False)
        # odd steps: few distinct values (equal concentrations: the refiling by index); even: all distinct
        angles = rng.integers(0, 6, size=25) / 5 if v % 2 else rng.random(25)
        s.observe(EventBatch.from_arrays(items, [[1, 0]] * 25, v, features={"angle": angles[:, None]}))
        pos = s.positions()
        fresh = make_strategy("gain", pool(300), {}, seed=8)
        fresh.load_state_dict(s.state_dict())
        assert np.array_equal(pos, fresh.positions())
        measured = ~np.isnan(s.angle)
        key = np.where(measured, -s.angle, 0.0)
        assert (np.diff(key[s.order().order][measured[s.order().order]]) >= 0).all()  # highest first
        assert s.details()["measured"] == int(measured.sum())
