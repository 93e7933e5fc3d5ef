"""Bounded state at scale: an owner with 10^6 items fed 10^7 reported groups (records of 4096 results, so
that feeding takes minutes; a new policy version every 512 groups), through the real owner class on a real
Redis, in-process. Measures the snapshot (size, time), the restore of a fresh owner (time, RSS), the feeding
owner's RSS and Redis' memory, for this tree and for another source tree given with --before (e.g. main
before bounded state: `git archive <commit> | tar -x -C /tmp/before`), each in fresh processes.

    .venv/bin/python benchmarks/bounded_state.py [--items 1000000] [--groups 10000000] [--before /tmp/before]
    .venv/bin/python benchmarks/bounded_state.py --pool-codec --out benchmarks/results/pool_codec.json
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
PER_RECORD, GROUPS_PER_VERSION = 4096, 512


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def feed(redis_url: str, items: int, groups: int, snapshot_every: int) -> dict:
    """Create the experiment, report `groups` results through ExperimentOwner.report, snapshot at the end."""
    import uuid

    import redis

    from services.owner import ExperimentOwner
    from services.schemas import ReportRequest
    from services.store import ExperimentStore

    store = ExperimentStore(redis_url)
    pool = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 8}"} for i in range(items)]
    store.create({"name": "big", "strategy": "sec", "params": {}, "group_size": 2, "seed": 0}, pool)
    del pool
    owner = ExperimentOwner("big", redis_url, snapshot_every=snapshot_every, snapshot_seconds=1e9)
    t0 = time.perf_counter()
    for k in range(groups // PER_RECORD):
        base = (k * PER_RECORD * 7919) % items
        ack = owner.report(ReportRequest(results=[{"item_id": f"q{(base + j) % items}", "rewards": [j & 1, 1],
                                                   "policy_version": (k * PER_RECORD + j) // GROUPS_PER_VERSION,
                                                   "rollout_id": uuid.uuid4().hex} for j in range(PER_RECORD)]))
        assert ack["accepted"] == PER_RECORD, ack
    fed_s = time.perf_counter() - t0
    gc.collect()
    t = time.perf_counter()
    owner.snapshot()
    snap_s = time.perf_counter() - t
    r = redis.Redis.from_url(redis_url)
    data, _ = store.load_snapshot("big")
    return {"feed_s": fed_s, "snapshot_s": snap_s, "snapshot_mb": len(data) / 2**20, "owner_rss_mb": rss_mb(),
            "events": owner.summary()["events"], "log_records_in_redis": store.log_length("big"),
            "redis_used_mb": r.info("memory")["used_memory"] / 2**20}


def restore(redis_url: str) -> dict:
    from services.owner import ExperimentOwner

    base = rss_mb()
    t = time.perf_counter()
    owner = ExperimentOwner("big", redis_url)
    import services

    return {"restore_s": time.perf_counter() - t, "restored_owner_rss_mb": rss_mb(), "rss_before_restore_mb": base,
            "code": services.__file__,
            "restored_events": owner.summary()["events"], "replayed": owner.restored["replayed"]}


def pool_codec(items: int) -> dict:
    """The snapshot of an experiment of `items` items with no events, encoded and restored two ways in this process:
    the pool in columns (what snapshots hold now) and one dict per item (what they held before; still readable)."""
    from curriculum import codec
    from curriculum.experiment import ExperimentConfig, ExperimentState

    st = ExperimentState(ExperimentConfig(name="big", strategy="sec"),
                         [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 8}", "answer": str(i + 1),
                           "metadata": {"verifier": "exact"} if i % 2 else {}} for i in range(items)])
    out = {}
    for label in ("per_item", "columns"):
        gc.collect()
        t = time.perf_counter()
        d = st.state_dict()
        if label == "per_item":
            del d["pool"]
            d["items"] = [it.model_dump(mode="json") for it in st.pool.to_items()]
        data = codec.encode(d)
        enc = time.perf_counter() - t
        t = time.perf_counter()
        back = ExperimentState.from_state_dict(codec.decode(data))
        dec = time.perf_counter() - t
        assert back.pool.size == items and back.pool.item(items - 1) == st.pool.item(items - 1)
        out[label] = {"encode_s": enc, "restore_s": dec, "mb": len(data) / 2**20}
    return out


def child(args) -> None:
    sys.path.insert(0, args.tree)
    fn = feed if args.child == "feed" else restore
    kw = (
        {"items": args.items, "groups": args.groups, "snapshot_every": args.snapshot_every}
        if args.child == "feed"
        else {}
    )
    print("RESULT " + json.dumps(fn(args.redis_url, **kw)), flush=True)


def run_tree(tree: str, args) -> dict:
    from services.redis_server import LocalRedis

    with LocalRedis(Path(tempfile.mkdtemp(prefix="bounded-"))) as srv:
        out = {}
        for step in ("feed", "restore"):
            cmd = [sys.executable, __file__, "--child", step, "--tree", tree, "--redis-url", srv.url,
                   "--items", str(args.items), "--groups", str(args.groups),
                   "--snapshot-every", str(args.snapshot_every)]
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=tree, env={**os.environ, "PYTHONPATH": tree})
            line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"{step} in {tree} failed:\n{p.stderr[-3000:]}")
            out.update(json.loads(line[7:]))
        return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--groups", type=int, default=10_000_000)
    ap.add_argument("--snapshot-every", type=int, default=500, help="records between snapshots while feeding")
    ap.add_argument("--before", help="another source tree to measure the same way (the baseline)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bounded_state.json"))
    ap.add_argument("--child"), ap.add_argument("--tree", default=str(HERE)), ap.add_argument("--redis-url")
    ap.add_argument("--pool-codec", action="store_true", help="only the in-process pool encoding comparison")
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if args.pool_codec:
        res = {"items": args.items, "pool_codec": pool_codec(args.items), "load_avg_1m": os.getloadavg()[0]}
        print(
            f"\nsnapshot of {args.items:,} items, no events (in-process):\n\n"
            "| pool stored as | MB | encode s | restore s |\n|---|---:|---:|---:|"
        )
        for k, v in res["pool_codec"].items():
            print(f"| {k.replace('_', ' ')} | {v['mb']:.1f} | {v['encode_s']:.2f} | {v['restore_s']:.2f} |")
        Path(args.out).write_text(json.dumps(res, indent=2))
        return res
    res = {"items": args.items, "groups": args.groups, "per_record": PER_RECORD,
           "groups_per_policy_version": GROUPS_PER_VERSION, "snapshot_every_records": args.snapshot_every,
           "cpus": os.cpu_count()}
    trees = {"before": args.before, "after": str(HERE)} if args.before else {"after": str(HERE)}
    for label, tree in trees.items():
        res[label] = run_tree(tree, args)
        print(label, json.dumps(res[label]), flush=True)
    res["load_avg_1m"] = os.getloadavg()[0]
    table(res)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(f"\nwrote {args.out}")
    return res


def table(res: dict) -> None:
    print(
        f"\n{res['items']:,} items, {res['groups']:,} reported groups ({PER_RECORD} per record, a policy version every "
        f"{GROUPS_PER_VERSION}), snapshots every {res['snapshot_every_records']:,} records:\n"
    )
    cols = [("snapshot_mb", "snapshot MB"), ("snapshot_s", "snapshot s"), ("restore_s", "restore s"),
            ("restored_owner_rss_mb", "restored owner RSS MB"), ("owner_rss_mb", "feeding owner RSS MB"),
            ("log_records_in_redis", "log records in Redis"), ("redis_used_mb", "Redis used MB"),
            ("feed_s", "feed s")]
    print("| | " + " | ".join(c for _, c in cols) + " |\n|---|" + "---:|" * len(cols))
    for label in ("before", "after"):
        if label in res:
            print(f"| {label} | " + " | ".join(f"{res[label][k]:,.1f}" if isinstance(res[label][k], float)
                                               else f"{res[label][k]:,}" for k, _ in cols) + " |")


if __name__ == "__main__":
    main()
