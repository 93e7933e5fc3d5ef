"""Idempotent leases in the state machine: a lease_key answers the same batch while its lease lives, and the
key -> batch map is part of the snapshot and of replay, so a restarted owner answers the same."""
import pytest

from curriculum import codec
from curriculum.experiment import ExperimentConfig, ExperimentState, replay

ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 3}", "answer": str(i + 1)} for i in range(40)]
CFG = ExperimentConfig(name="e", strategy="uniform", group_size=4, seed=3)


def lease(st, k, now, key=None, n=8, seconds=10.0):
    rec = {"op": "lease", "n": n, "worker": "w", "lease_seconds": seconds, "now": now, "batch_id": f"b{k}"}
    if key is not None:
        rec["lease_key"] = key
    return rec, st.apply(rec)


def test_same_key_same_batch_until_the_lease_ends():
    st = ExperimentState(CFG.model_copy(), ITEMS)
    _, a = lease(st, 1, 0.0, key="run/step-1")
    leased = int(st.leased_mask().sum())
    assert st.keyed_batch("run/step-1", 5.0) == a
    _, again = lease(st, 2, 5.0, key="run/step-1")  # a logged duplicate (e.g. replayed) changes nothing
    assert again == a and int(st.leased_mask().sum()) == leased and st.batches == 1
    _, other = lease(st, 3, 5.0, key="run/step-2")
    assert other["batch_id"] == "b3" and not {i["id"] for i in other["items"]} & {i["id"] for i in a["items"]}
    # a report ends the items' leases but not the key: a restarted caller still gets its batch back
    st.apply({"op": "report", "now": 6.0, "results": [{"item_id": i["id"], "rewards": [1, 0, 0, 1],
                                                        "rollout_id": i["id"]} for i in a["items"]]})
    assert st.keyed_batch("run/step-1", 6.0) == a
    assert st.keyed_batch("run/step-1", 10.0) is None  # the lease ended: the key is free
    _, fresh = lease(st, 4, 15.0, key="run/step-1")  # step-2 (leased at 5.0 for 10 s) ends now too
    assert fresh["batch_id"] == "b4" and "run/step-2" not in st.keyed  # expired with its lease
    assert st.describe()["details"]["lease_keys"] == 1


@pytest.mark.parametrize("cut", [2, 5])
def test_keys_survive_snapshot_and_replay_exactly(cut):
    live, log = ExperimentState(CFG.model_copy(), ITEMS), []
    plan = [(0.0, "s1"), (1.0, None), (2.0, "s2"), (3.0, "s1"), (12.5, "s2"), (13.0, "s3")]
    snap = None
    for k, (now, key) in enumerate(plan):
        if k == cut:
            snap = codec.decode(codec.encode(live.state_dict()))
        rec, _ = lease(live, k, now, key)
        log.append(rec)
    again = replay(CFG.model_copy(), log, ITEMS)
    restored = ExperimentState.from_state_dict(snap)
    for rec in log[cut:]:
        restored.apply(rec)
    for st in (again, restored):
        assert st.keyed == live.keyed and st.leased_until.tolist() == live.leased_until.tolist()
        assert st.batches == live.batches
        # and the next keyed lease answers identically
        assert lease(st, 99, 14.0, key="s3")[1] == lease(live, 99, 14.0, key="s3")[1]
        assert st.keyed_batch("s1", 14.0) is None  # s1's lease (t=0/1 + 10 s) has ended
