"""The owner's log in Redis is trimmed at every snapshot: Redis holds the snapshot and the tail, a restore
reads O(items + tail) and rebuilds the same state (the owner class in-process, on a real Redis)."""
from services.owner import ExperimentOwner
from services.schemas import LeaseRequest, ReportRequest
from services.store import ExperimentStore

ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 4}", "answer": str(i + 1)} for i in range(40)]


def test_snapshot_trims_the_log_and_a_restore_matches(redis_url):
    store = ExperimentStore(redis_url)
    assert store.create({"name": "b1", "strategy": "sec", "params": {}, "group_size": 8, "seed": 0}, ITEMS)
    owner = ExperimentOwner("b1", redis_url, snapshot_every=25, snapshot_seconds=1e9)
    for v in range(30):
        b = owner.lease(LeaseRequest(size=4, worker="w", lease_seconds=600))
        ack = owner.report(ReportRequest(results=[{"item_id": it["id"], "rewards": [1, 0], "policy_version": v,
                                                   "rollout_id": f"{v}-{it['id']}"} for it in b["items"]],
                                         batch_id=b["batch_id"]))
        assert ack == {"accepted": 4, "duplicates": 0}
    # 1 + 60 records so far, snapshots every 25: the log keeps the record at the snapshot and the tail
    assert store.log_length("b1") <= 25 + 1
    _, last = store.load_snapshot("b1")
    assert [rid for rid, _ in store.records("b1")][0] == last  # everything before the snapshot is gone
    again = ExperimentOwner("b1", redis_url)
    assert again.restored["snapshot"] and again.restored["replayed"] == store.log_length("b1") - 1
    assert again.state_view() == owner.state_view() and again.summary() == owner.summary()
    # the restored owner still knows the recent rollout ids
    assert again.report(ReportRequest(results=[{"item_id": "q0", "rewards": [1], "policy_version": 29,
                                                "rollout_id": "29-" + b["items"][0]["id"]}]))["duplicates"] == 1
