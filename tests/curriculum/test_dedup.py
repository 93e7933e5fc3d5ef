"""Duplicate detection in bounded memory (curriculum.dedup) and snapshots in O(items), not O(events)."""
from curriculum import codec
from curriculum.dedup import WINDOW, SeenIds
from curriculum.experiment import ExperimentConfig, ExperimentState

ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 4}", "answer": str(i + 1)} for i in range(40)]


def report(st, version, ids, item="q1"):
    return st.apply({"op": "report", "now": 0.0,
                     "results": [{"item_id": item, "rewards": [1, 0], "rollout_id": r, "policy_version": version}
                                 for r in ids]})


def test_memory_holds_a_window_of_policy_versions_not_the_run():
    st = ExperimentState(ExperimentConfig(name="d", strategy="uniform"), ITEMS)
    sizes = []
    for v in range(60):
        assert report(st, v, [f"v{v}-{k}" for k in range(50)]) == {"accepted": 50, "duplicates": 0}
        sizes.append(len(st.seen))
    assert max(sizes) <= (WINDOW + 1) * 50 and sizes[-1] == sizes[30]  # flat once the window is full
    assert st.strategy.events == 60 * 50
    # a resend inside the window: a duplicate, not applied
    assert report(st, 59 - WINDOW + 1, [f"v{59 - WINDOW + 1}-0"]) == {"accepted": 0, "duplicates": 1}
    # a resend after the window: forgotten id, but its version is below the floor -> still not applied
    assert report(st, 3, ["v3-0", "never-seen-but-too-old"]) == {"accepted": 0, "duplicates": 2}
    assert st.strategy.events == 60 * 50 and st.duplicates == 3


def test_snapshot_is_o_items_and_round_trips():
    st = ExperimentState(ExperimentConfig(name="d", strategy="sec"), ITEMS)
    for v in range(40):
        report(st, v, [f"v{v}-{k}" for k in range(20)], item=f"q{v}")
    small = len(codec.encode(st.state_dict()))
    for v in range(40, 400):
        report(st, v, [f"v{v}-{k}" for k in range(20)], item=f"q{v % 40}")
    big = len(codec.encode(st.state_dict()))
    assert big < 1.2 * small  # 10x the events, about the same snapshot
    back = ExperimentState.from_state_dict(codec.decode(codec.encode(st.state_dict())))
    assert back.describe() == st.describe() and len(back.seen) == len(st.seen)
    assert report(back, 399, ["v399-3"]) == report(st, 399, ["v399-3"]) == {"accepted": 0, "duplicates": 1}
    assert report(back, 0, ["x"]) == report(st, 0, ["x"]) == {"accepted": 0, "duplicates": 1}


def test_a_snapshot_from_before_the_window_still_loads():
    s = SeenIds.from_state_dict(["a", "b"], version=5)
    assert s.is_duplicate("a", 5) and s.is_duplicate("b", 7) and not s.is_duplicate("c", 5)
