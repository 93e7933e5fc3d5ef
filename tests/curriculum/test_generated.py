"""Generated sources: reproducible items, a bounded pool per arm, snapshots that hold the spec and regenerate the
same items, h1 chains whose answers are right by construction, and reasoning-gym attribute levels as arms."""
import json
import re

import numpy as np
import pytest
from pydantic import ValidationError

from curriculum import codec
from curriculum.experiment import ExperimentConfig, ExperimentState, replay
from curriculum.sources import ChainSource, RGLevelsSource, parse_generator, parse_source
from workers.model import CHARS
from workers.verifiers import exact, reasoning_gym

CHAIN = {"kind": "chain", "max_horizon": 4, "per_arm": 8, "seed": 3}
OPS = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}


def solve(prompt: str) -> int:
    """Evaluate a chain prompt independently of the generator: step 1, then each 'v=u<op>k;' template."""
    first, rest = re.match(r"a=(.*?)(?:;|\n)(.*)$", prompt, re.S).groups()
    m = re.fullmatch(r"(\d+)\+(\d+)", first)
    if m:
        value = int(m[1]) + int(m[2])
    else:  # count_bits step 1
        value = bin(int(re.search(r"number (\d+)\?", first)[1])).count("1")
    names = {"a": value}
    for var, src, op, k in re.findall(r"([a-z])=([a-z])([-+*])(\d+);", rest):
        names[var] = OPS[op](names[src], int(k))
    final = re.fullmatch(r".*([a-z])=", prompt, re.S)[1]
    return names[final]


def loop(st, steps, n=10, rng=None, t0=0.0):
    """Lease n, report a group for every leased item; returns the records applied."""
    rng = rng or np.random.default_rng(0)
    recs = []
    for k in range(steps):
        lease = {"op": "lease", "n": n, "worker": "w", "lease_seconds": 5.0, "now": t0 + 10 * k, "batch_id": f"b{k}"}
        out = st.apply(lease)
        rep = {"op": "report", "now": t0 + 10 * k + 1, "results": [
            {"item_id": it["id"], "rewards": rng.integers(0, 2, 4).tolist(), "rollout_id": f"{t0}-{k}-{it['id']}",
             "policy_version": k} for it in out["items"]]}
        st.apply(rep)
        recs += [lease, rep]
    return recs


# -- generation ----------------------------------------------------------------------------------------------
def test_generation_is_a_function_of_spec_arm_and_index():
    a, b = parse_generator(CHAIN), parse_generator(dict(CHAIN))
    assert [a.make(2, k) for k in range(20)] == b.make_range(2, 0, 20)
    assert a.make(3, 7) == b.make(3, 7)  # no hidden state: any order, any instance
    other = parse_generator({**CHAIN, "seed": 4})
    assert [i.prompt for i in other.make_range(2, 0, 20)] != [i.prompt for i in a.make_range(2, 0, 20)]
    assert len({i.id for i in a.items()}) == 4 * 8


@pytest.mark.parametrize("spec", [
    {"kind": "chain", "max_horizon": 8},
    {"kind": "chain", "max_horizon": 6, "ops": ["+", "-", "*"], "seed": 5},
    {"kind": "chain", "max_horizon": 5, "dataset": "count_bits", "config": {"min_n": 1, "max_n": 1000}},
])
def test_chain_answers_are_right_by_construction_and_fit_the_tiny_model(spec):
    gen = parse_generator(spec)
    for arm, a in enumerate(gen.arms()):
        h = a.config["horizon"]
        for it in gen.make_range(arm, 0, 40):
            assert int(it.answer) == solve(it.prompt) == it.metadata["steps"][-1]
            assert len(it.metadata["steps"]) == h and it.prompt.count("=") == h + 1
            item = it.model_dump()
            assert exact(item, it.answer) == 1.0 and exact(item, str(int(it.answer) + 1)) == 0.0
            assert len(it.prompt) + len(it.answer) + 2 <= 128  # BOS + prompt + answer + EOS
            assert set(it.prompt + it.answer) <= set(CHARS)
            assert all(0 <= v <= gen.value_max for v in it.metadata["steps"][1:])


def test_each_chain_step_feeds_the_next():
    it = parse_generator({"kind": "chain", "max_horizon": 5, "seed": 1}).make(4, 0)
    steps = it.prompt.split(";")
    for i in range(1, 5):  # step i+1 names the answer of step i as its first operand
        assert steps[i].startswith(f"{'abcde'[i]}={'abcde'[i - 1]}")


def test_a_chain_that_cannot_fit_is_refused():
    with pytest.raises(ValueError, match="max_positions"):
        parse_source({"kind": "chain", "max_horizon": 20, "dataset": "count_bits"})
    with pytest.raises(ValidationError, match="min_horizon"):
        ChainSource(min_horizon=4, max_horizon=2)


def test_rg_levels_are_arms_with_rising_attributes_and_the_dataset_grades_them():
    gen = parse_generator({"kind": "rg_levels", "dataset": "basic_arithmetic", "attributes": ["num_terms"],
                           "config": {"operators": ["+", "-"], "allow_parentheses": False}})
    arms = gen.arms()
    assert [a.name for a in arms] == ["L0", "L1", "L2", "L3", "L4"]
    assert [a.config["max_terms"] for a in arms] == [2, 3, 4, 5, 6]
    assert all(a.config["max_digits"] == 1 and a.config["operators"] == ["+", "-"] for a in arms)
    for arm in range(len(arms)):
        it = gen.make(arm, 3)
        assert it.category == arms[arm].name and it.difficulty == arm
        assert reasoning_gym(it.model_dump(), it.answer) == 1.0
        assert reasoning_gym(it.model_dump(), "zz") < 1.0
    with pytest.raises(ValueError, match="attributes"):
        parse_source({"kind": "rg_levels", "dataset": "basic_arithmetic", "attributes": ["nope"]})
    with pytest.raises(ValueError, match="curriculum"):
        RGLevelsSource(dataset="no_such_dataset").arms()


# -- the bounded pool ----------------------------------------------------------------------------------------
def test_pool_is_bounded_per_arm_refilled_on_demand_and_items_retire_after_use():
    st = ExperimentState(ExperimentConfig(name="e", strategy="uniform", generator=CHAIN))
    gp = st.generated
    assert st.pool.size == 32 and gp.live().tolist() == [8, 8, 8, 8]
    served = []
    for k in range(30):
        out = st.apply({"op": "lease", "n": 6, "worker": "w", "lease_seconds": 5.0, "now": 10.0 * k,
                        "batch_id": f"b{k}"})
        ids = [i["id"] for i in out["items"]]
        assert not set(ids) & set(served)  # max_uses = 1: a reported item is never served again
        served += ids
        assert (gp.live() <= 8).all() and (gp.live() >= gp.gen.low_water).all()  # refilled before the lease
        st.apply({"op": "report", "now": 10.0 * k + 1,
                  "results": [{"item_id": i, "rewards": [1, 0], "rollout_id": f"{k}-{i}"} for i in ids]})
    assert len(served) == 180 and gp.made.sum() > 32 and gp.retired.sum() == 180
    assert st.describe()["details"]["generator"]["retired"] == 180


def test_items_retire_after_max_uses_reports():
    st = ExperimentState(ExperimentConfig(name="e", strategy="uniform",
                                          generator={**CHAIN, "max_uses": 2, "per_arm": 4}))
    uses = {}
    for k in range(12):
        out = st.apply({"op": "lease", "n": 4, "worker": "w", "lease_seconds": 5.0, "now": 10.0 * k,
                        "batch_id": f"b{k}"})
        for it in out["items"]:
            uses[it["id"]] = uses.get(it["id"], 0) + 1
            assert uses[it["id"]] <= 2
        st.apply({"op": "report", "now": 10.0 * k + 1,
                  "results": [{"item_id": i["id"], "rewards": [1], "rollout_id": f"{k}-{i['id']}"}
                              for i in out["items"]]})
    assert max(uses.values()) == 2


# -- snapshots -----------------------------------------------------------------------------------------------
def test_snapshot_holds_the_spec_not_the_items_and_restore_regenerates_them():
    cfg = ExperimentConfig(name="e", strategy="horizon", params={"min_groups": 4, "window": 8}, generator=CHAIN)
    st = ExperimentState(cfg)
    records = loop(st, 8)
    records.append({"op": "add_items", "items": [{"id": "hand-1", "prompt": "a=1+1;a=", "category": "h1",
                                                   "answer": "2"}]})
    st.apply(records[-1])
    records += loop(st, 4, t0=1000.0)
    blob = codec.encode(st.state_dict())
    some_prompt = st.pool.prompts[40]
    assert some_prompt.encode() not in blob and b"hand-1" in blob  # generated items are not stored; hand ones are
    restored = ExperimentState.from_state_dict(codec.decode(blob))
    assert restored.pool.ids == st.pool.ids and restored.pool.prompts == st.pool.prompts
    assert restored.generated.retired.tolist() == st.generated.retired.tolist()
    assert restored.describe() == st.describe()
    nxt = loop(restored, 5, t0=5000.0)
    again = replay(cfg, [{"op": "add_items", "items": []}] + records)  # the log alone gives the same state
    loop(again, 5, t0=5000.0)
    loop(st, 5, t0=5000.0)
    assert restored.describe() == st.describe() == again.describe()
    assert restored.pool.ids == st.pool.ids == again.pool.ids and len(nxt) == 10


def test_state_shows_each_arm_configuration():
    st = ExperimentState(ExperimentConfig(name="e", strategy="coach", generator=CHAIN))
    d = json.loads(json.dumps(st.describe()))
    assert [a["config"]["horizon"] for a in d["arms"]] == [1, 2, 3, 4]
    assert d["details"]["generator"]["per_arm"] == 8 and len(d["details"]["generator"]["arms"]) == 4


def test_problems_draw_fresh_pairs_of_one_level_for_the_warm_start():
    gen = parse_generator({"kind": "chain", "max_horizon": 3})
    pairs = gen.problems(1, 50, np.random.default_rng(0))
    assert len(pairs) == 50 and all(p.count("=") == 2 and int(a) == solve(p) for p, a in pairs)
    assert gen.problems(3, 5, np.random.default_rng(1)) == gen.problems(3, 5, np.random.default_rng(1))
    with pytest.raises(ValueError, match="no arm"):
        gen.problems(9, 1, np.random.default_rng(0))


def test_rg_level_prompts_fit_the_tiny_model_without_instruction():
    gen = parse_generator({"kind": "rg_levels", "dataset": "basic_arithmetic", "attributes": ["num_terms"],
                           "config": {"operators": ["+", "-"], "allow_parentheses": False}})
    for arm in range(len(gen.arms())):
        for it in gen.make_range(arm, 0, 30):
            assert len(it.prompt) + len(it.answer) + 2 <= 128 and set(it.prompt + it.answer) <= set(CHARS)


def test_guided_arms_state_the_intermediate_results_and_sit_below_their_horizon():
    gen = parse_generator({"kind": "chain", "max_horizon": 4, "guided": True, "seed": 2})
    assert [(a.name, a.difficulty) for a in gen.arms()] == [("h1", 1), ("h2g", 1.5), ("h2", 2), ("h3g", 2.5),
                                                            ("h3", 3), ("h4g", 3.5), ("h4", 4)]
    for arm, a in enumerate(gen.arms()):
        for it in gen.make_range(arm, 0, 20):
            shown = [int(v) for v in re.findall(r"[a-z]=(-?\d+);", it.prompt)]
            steps = it.metadata["steps"]
            assert shown == (steps[:-1] if a.config.get("guided") else [])  # every result but the graded one
            assert int(it.answer) == solve(it.prompt) and exact(it.model_dump(), it.answer) == 1.0


def test_horizon_withdraws_the_guidance_when_the_guided_pass_rate_passes_the_gate():
    cfg = ExperimentConfig(name="e", strategy="horizon", params={"min_groups": 8, "window": 8},
                           generator={"kind": "chain", "max_horizon": 2, "guided": True, "per_arm": 16})
    st = ExperimentState(cfg)
    seen = []
    for k, reward in enumerate([1, 0, 1, 1]):  # h1 passes; h2g fails, then passes; then unguided h2
        out = st.apply({"op": "lease", "n": 8, "worker": "w", "lease_seconds": 5.0, "now": 10.0 * k,
                        "batch_id": f"b{k}"})
        seen.append({i["category"] for i in out["items"]})
        st.apply({"op": "report", "now": 10.0 * k + 1, "results": [
            {"item_id": i["id"], "rewards": [reward] * 4, "rollout_id": f"{k}-{i['id']}", "policy_version": k}
            for i in out["items"]]})
    assert seen == [{"h1"}, {"h2g"}, {"h2g"}, {"h2"}]


def test_a_hand_item_that_takes_a_future_generated_id_is_kept_and_restore_still_matches():
    cfg = ExperimentConfig(name="e", strategy="uniform", generator={**CHAIN, "per_arm": 4})
    st = ExperimentState(cfg)
    taken = st.generated.gen.make(0, 6).id  # arm h1 will generate k = 6 at its first refill
    st.apply({"op": "add_items", "items": [{"id": taken, "prompt": "mine", "category": "h1"}]})
    loop(st, 6, n=8)
    assert st.pool.item(st.pool.index_of(taken)).prompt == "mine" and st.generated.made[0] > 6
    restored = ExperimentState.from_state_dict(codec.decode(codec.encode(st.state_dict())))
    assert restored.pool.ids == st.pool.ids and restored.pool.prompts == st.pool.prompts
    loop(restored, 3, t0=500.0)
    loop(st, 3, t0=500.0)
    assert restored.describe() == st.describe()
