"""egsr: guided variants only for never-solved items, withdrawn level by level as their own pass rate rises, and
guided rewards never counted as the item's pass rate."""
import itertools

import numpy as np

from curriculum import EventBatch, ItemPool, codec, make_strategy
from curriculum.experiment import ExperimentConfig, ExperimentState, replay
from curriculum.items import Item
from curriculum.strategies.egsr import hint

ITEMS = [{"id": f"q{i}", "prompt": f"{100 + i}+0=", "category": f"d{i % 2}", "answer": str(100 + i)}
         for i in range(20)]
HARD = {f"q{i}" for i in range(4)}  # never solved unguided
PARAMS = {"inner": {"name": "uniform"}, "min_rollouts": 8, "levels": 2, "min_guided": 8, "withdraw_at": 0.5}


def reward_fn(guided_pass: dict[int, float]):
    """Unguided: HARD items always fail, the others pass half their samples; a variant at level L passes
    guided_pass[L] of its samples."""
    def rewards(pool, idx, num):
        out = np.full((len(idx), int(num.max())), np.nan)
        for k, (i, n) in enumerate(zip(idx.tolist(), num.tolist())):
            meta = pool.item(i).metadata
            p = guided_pass[meta["hint_level"]] if "guided_of" in meta else 0.0 if pool.ids[i] in HARD else 0.5
            out[k, :n] = (np.arange(n) < round(p * n)).astype(float)
        return out
    return rewards


def drive(s, rewards, steps, n=10):
    served = []
    for v in range(steps):
        sel = s.select(n)
        served.append(sel)
        s.observe(EventBatch(sel.indices, rewards(s.pool, sel.indices, sel.num_samples), np.full(len(sel), v)))
    return served


def test_hint_reveals_part_of_the_reference_never_all_of_it():
    chain = Item(id="c", prompt="a=7+5;b=a-3;c=b*2;c=", answer="18", metadata={"steps": [12, 9, 18]})
    assert hint(chain, 2, 2) == "a=12;b=9" and hint(chain, 1, 2) == "a=12"
    num = Item(id="n", prompt="617+617=", answer="1234")
    assert hint(num, 2, 2) == "123_" and hint(num, 1, 2) == "12__"
    assert hint(Item(id="s", prompt="2+2=", answer="4"), 2, 2) is None


def test_guidance_fires_only_for_never_solved_items_and_is_served_instead():
    s = make_strategy("egsr", ItemPool(ITEMS), PARAMS, seed=1, group_size=4)
    served = drive(s, reward_fn({1: 0.0, 2: 0.0}), 20)
    variants = [i for i in range(s.pool.size) if s.guided_of[i] >= 0]
    assert variants and {s.pool.ids[s.guided_of[j]] for j in variants} == HARD
    assert all(s.pool.ids[j].endswith("#hint2") and s.pool.prompts[j].startswith("[10") for j in variants)
    late = np.concatenate([x.indices for x in served[-4:]])
    assert not {s.pool.ids[i] for i in late} & HARD  # the hard originals are served as their variants
    assert {s.pool.ids[s.guided_of[i]] for i in late if s.guided_of[i] >= 0} == HARD
    g = s.describe()["details"]["guidance"]
    assert g["fired"] == len(HARD) and g["guided_now"] == len(HARD) and g["withdrawn"] == 0  # guided pass rate 0


def test_guidance_is_withdrawn_level_by_level_as_the_guided_pass_rate_rises():
    s = make_strategy("egsr", ItemPool(ITEMS), PARAMS, seed=1, group_size=4)
    served = drive(s, reward_fn({1: 1.0, 2: 1.0}), 60)
    for h in sorted(HARD):
        i = s.pool.index_of(h)
        seq = [int(s.hint_level[j]) for sel in served for j in sel.indices.tolist() if j == i or s.guided_of[j] == i]
        runs = [(lv, len(list(g))) for lv, g in itertools.groupby(seq)]
        moves = {(a[0], b[0]) for a, b in zip(runs, runs[1:])}
        # fire at the longest hint, withdraw one level at a time, back to the plain item, fire again after failures
        assert moves == {(0, 2), (2, 1), (1, 0)}
        assert all(n >= 2 for lv, n in runs[1:-1])  # 8 rollouts (2 groups of 4) at a level before it moves
    g = s.describe()["details"]["guidance"]
    assert [lv["pass_rate"] for lv in g["levels"]] == [1.0, 1.0] and g["withdrawn"] >= 2 * len(HARD)


def test_guided_rewards_are_kept_apart_from_the_items_pass_rate():
    st = ExperimentState(ExperimentConfig(name="g", strategy="egsr", params=PARAMS, group_size=4, seed=2), ITEMS)
    rewards, records = reward_fn({1: 1.0, 2: 1.0}), []
    for t in range(24):
        rec = {"op": "lease", "n": 10, "worker": "w", "lease_seconds": 60, "now": float(t), "batch_id": f"b{t}"}
        records.append(rec)
        items = st.apply(rec)["items"]
        idx = st.pool.indices_of([i["id"] for i in items])
        r = rewards(st.pool, idx, np.array([i["num_samples"] for i in items]))
        rep = {"op": "report", "now": t + 0.5, "results": [
            {"item_id": i["id"], "rewards": row[~np.isnan(row)].tolist(), "policy_version": t}
            for i, row in zip(items, r)]}
        records.append(rep)
        st.apply(rep)
    s = st.strategy
    hard = st.pool.indices_of(sorted(HARD))
    assert (s.pass_rate()[hard] == 0).all() and (s.inner.pass_rate()[hard] == 0).all()
    d = st.describe()
    g = d["details"]["guidance"]
    assert g["rollouts"] > 0 and g["levels"][1]["pass_rate"] == 1.0
    assert sum(a["events"] for a in d["arms"]) == s.events  # arms count unguided groups only
    assert d["details"]["cost"]["rollouts"] == int(s.n_samples.sum()) + g["rollouts"]  # guided ones are spent
    # the variants are part of the snapshot and of the log's replay
    again = ExperimentState.from_state_dict(codec.decode(codec.encode(st.state_dict())))
    assert again.pool.ids == st.pool.ids and again.describe() == d
    assert replay(st.config, [{"op": "add_items", "items": ITEMS}] + records).describe() == d


def test_a_step_with_guided_groups_in_shuffled_reports_with_reads_between_equals_one_report():
    from tests.curriculum.test_steps import same, split

    def warmed():
        pool = ItemPool(ITEMS)
        s = make_strategy("egsr", pool, PARAMS, seed=1, group_size=4)
        drive(s, reward_fn({1: 0.5, 2: 0.75}), 14)
        sel = s.select(12)
        return s, EventBatch(sel.indices, reward_fn({1: 0.5, 2: 0.75})(pool, sel.indices, sel.num_samples),
                             np.full(len(sel), 14))

    one, step = warmed()
    many, _ = warmed()
    assert (one.guided_of[step.item] >= 0).any() and (one.guided_of[step.item] < 0).any()
    one.observe(step)
    rng = np.random.default_rng(3)
    parts = split(step, 4, rng)
    for j in rng.permutation(4):
        many.observe(parts[j])
        many.describe()  # a read folds the open step; the next report rewinds and folds it again
    same(one.state_dict(), many.state_dict())
    assert one.describe() == many.describe()
    assert one.select(10).indices.tolist() == many.select(10).indices.tolist()


def test_selection_leaves_the_callers_mask_as_it_was_and_never_hands_out_what_it_excludes():
    # _select marks variants (and originals whose variant is out) in the caller's mask and takes the marks back
    s = make_strategy("egsr", ItemPool(ITEMS), PARAMS, seed=1, group_size=4)
    drive(s, reward_fn({1: 0.0, 2: 0.0}), 20)
    variants = s.variants()
    assert len(variants) == len(HARD)
    exclude = np.zeros(s.pool.size, dtype=bool)
    exclude[variants[:2]] = True  # two variants are out on lease: their originals wait
    exclude[[10, 11]] = True
    before = exclude.copy()
    for _ in range(5):
        got = s.select(8, exclude).indices
        assert np.array_equal(exclude, before)
        assert not set(got.tolist()) & ({10, 11} | set(variants[:2].tolist()) | set(s.guided_of[variants[:2]].tolist()))
    s.select(8)
    assert not s.scratch_mask().any()  # the scratch mask goes back clean too


def test_the_variant_list_follows_a_restore():
    s = make_strategy("egsr", ItemPool(ITEMS), PARAMS, seed=1, group_size=4)
    drive(s, reward_fn({1: 0.0, 2: 0.0}), 20)
    snap = s.state_dict()
    fresh = make_strategy("egsr", ItemPool(ITEMS), PARAMS, seed=1, group_size=4)
    assert len(fresh.variants()) == 0
    fresh.pool.add([s.pool.item(i) for i in range(len(ITEMS), s.pool.size)])
    fresh.load_state_dict(snap)
    assert np.array_equal(fresh.variants(), s.variants())
