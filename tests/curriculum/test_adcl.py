"""adcl: probe leases re-estimate the upcoming chunk, the chunk is served easy -> hard by the probes' pass rates,
probes are counted as spent, and a snapshot taken mid-chunk continues identically."""
import numpy as np

from curriculum import EventBatch, ItemPool, codec, make_strategy
from curriculum.experiment import ExperimentConfig, ExperimentState

CHUNK, G_EST, PERIOD = 12, 4, 3
PARAMS = {"chunk_size": CHUNK, "g_est": G_EST, "period": PERIOD}
ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i // 10}", "difficulty": float(i // 10),
          "answer": str(i + 1)} for i in range(40)]


def truth(idx: np.ndarray) -> np.ndarray:
    """A fixed pass rate per item that disagrees with the prior order (difficulty shift)."""
    return ((idx * 7) % 5) / 4.0


def rewards(idx: np.ndarray, num: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.full((len(idx), int(num.max())), np.nan)
    p = truth(idx)
    for k, n in enumerate(num.tolist()):
        # exactly round(p * n) successes: a probe of 4 measures p in quarters without sampling noise
        hits = int(round(p[k] * n))
        out[k, :n] = rng.permutation(np.r_[np.ones(hits), np.zeros(n - hits)])
    return out


def step(s, n, version, rng):
    sel = s.select(n)
    if len(sel):
        s.observe(EventBatch(sel.indices, rewards(sel.indices, sel.num_samples, rng), np.full(len(sel), version)))
    return sel


def test_probes_then_the_chunk_easy_to_hard():
    s = make_strategy("adcl", ItemPool(ITEMS), PARAMS, seed=1, group_size=8)
    rng = np.random.default_rng(0)
    first = step(s, 8, 0, rng)
    assert (first.num_samples == G_EST).all() and len(first) == 8
    assert set(first.indices.tolist()) <= set(s.chunk_items().tolist())
    second = step(s, 8, 1, rng)  # the 4 remaining probes, then full groups from the prior order after the chunk
    assert second.num_samples.tolist() == [G_EST] * (CHUNK - 8) + [8] * 4
    assert second.indices[CHUNK - 8:].tolist() == s.rank[CHUNK:CHUNK + 4].tolist()
    chunk = s.chunk_items()
    assert np.all(s.pass_rate()[chunk] == truth(chunk))  # the prior's easiest 12 items were probed
    served = np.concatenate([step(s, 5, 2, rng).indices, step(s, 5, 3, rng).indices])
    assert s.describe()["details"]["phase"] == "train"
    order = s.order
    assert sorted(order.tolist()) == sorted(chunk.tolist())
    assert np.all(np.diff(s.p_est[order]) <= 0)  # non-increasing in the probe pass rate
    assert not np.all(np.diff(truth(chunk)) <= 0)  # ... which the prior order was not
    assert served.tolist() == order[:10].tolist()  # served in that order
    assert np.all(np.diff(truth(served)) <= 0)


def test_probe_budget_is_chunk_times_g_est_and_counts_as_spent():
    st = ExperimentState(ExperimentConfig(name="a", strategy="adcl", params=PARAMS, group_size=8, seed=2), ITEMS)
    rng = np.random.default_rng(1)
    for k in range(4):
        batch = st.apply({"op": "lease", "n": 6, "worker": "w", "lease_seconds": 60, "now": float(k),
                          "batch_id": f"b{k}"})
        idx = st.pool.indices_of([i["id"] for i in batch["items"]])
        num = np.array([i["num_samples"] for i in batch["items"]])
        r = rewards(idx, num, rng)
        st.apply({"op": "report", "now": k + 0.5, "results": [
            {"item_id": i["id"], "rewards": row[~np.isnan(row)].tolist(), "policy_version": k,
             "signals": {"tokens": 3.0 * i["num_samples"]}} for i, row in zip(batch["items"], r)]})
    d = st.describe()
    probes = d["details"]["probes"]
    assert probes["rollouts"] == CHUNK * G_EST and probes["groups"] == CHUNK
    assert probes["tokens"] == 3.0 * CHUNK * G_EST
    trained = 2 * 6 * 8  # steps 2 and 3 served full groups
    assert d["details"]["cost"]["rollouts"] == CHUNK * G_EST + trained  # the experiment's cost includes probes
    assert probes["share_of_rollouts"] == CHUNK * G_EST / (CHUNK * G_EST + trained)


def test_after_period_steps_the_next_chunk_is_reestimated_while_the_old_order_fills():
    s = make_strategy("adcl", ItemPool(ITEMS), PARAMS, seed=1, group_size=8)
    rng = np.random.default_rng(0)
    v = 0
    for v in range(2 + PERIOD):
        step(s, 6, v, rng)
    first = set(s.order.tolist())
    sel = step(s, 6, v + 1, rng)  # period over: chunk 2's probes, then the old order fills the slots
    probes = sel.indices[sel.num_samples == G_EST]
    assert len(probes) == 6 and not set(probes.tolist()) & first
    assert s.describe()["details"]["chunk"] == 1
    sel = step(s, 10, v + 2, rng)
    assert (sel.num_samples == G_EST).sum() == CHUNK - 6
    fill = sel.indices[sel.num_samples == 8]
    assert len(fill) == 10 - (CHUNK - 6) and set(fill.tolist()) <= first
    assert s.describe()["details"]["probes"]["rollouts"] == 2 * CHUNK * G_EST
    big = step(s, 30, v + 3, rng)  # more than the chunk holds: its order, the old order, then the prior order
    assert len(big) == 30 and len(set(big.indices.tolist())) == 30 and (big.num_samples == 8).all()
    assert big.indices[:CHUNK].tolist() == s.order.tolist()


def test_snapshot_mid_chunk_reloads_to_the_same_continuation():
    pool = ItemPool(ITEMS)
    s = make_strategy("adcl", pool, PARAMS, seed=3, group_size=8)
    rng = np.random.default_rng(5)
    for v in range(4):  # mid-train of chunk 1, cursor inside the order
        step(s, 5, v, rng)
    assert s.describe()["details"]["phase"] == "train" and s.cursor != 0
    snap = codec.decode(codec.encode(s.state_dict()))
    again = make_strategy("adcl", pool, PARAMS, seed=99, group_size=8)
    again.load_state_dict(snap)
    ra, rb = np.random.default_rng(9), np.random.default_rng(9)
    for v in range(4, 12):  # through the next re-estimation
        a, b = step(s, 5, v, ra), step(again, 5, v, rb)
        assert a.indices.tolist() == b.indices.tolist() and a.num_samples.tolist() == b.num_samples.tolist()
    assert s.describe()["details"] == again.describe()["details"]


def test_without_reestimation_the_prior_order_is_served_and_nothing_is_probed():
    s = make_strategy("adcl", ItemPool(ITEMS), {**PARAMS, "reestimate": False}, seed=1, group_size=8)
    rng = np.random.default_rng(0)
    served = [step(s, 6, v, rng) for v in range(PERIOD + 1)]
    assert all((x.num_samples == 8).all() for x in served)
    flat = np.concatenate([x.indices for x in served[:2]])
    assert flat.tolist() == s.rank[:CHUNK].tolist()  # the prior rank, in order (12 items in two steps of 6)
    assert s.describe()["details"]["probes"]["rollouts"] == 0 and s.describe()["details"]["chunk"] == 1
