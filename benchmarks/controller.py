"""Controller loop latency: lease a batch of 64 + report 64 x 8 rewards, over REST and through the in-cluster
client (no HTTP), against a real local Ray + Serve + Redis; and, in the same run, the Redis XADD ceiling for
the same records, as a ratio.

    .venv/bin/python benchmarks/controller.py [--loops 300] [--items 10000] [--strategy sec]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

BATCH, GROUP = 64, 8


def loop(client, name: str, loops: int, tag: str) -> list[float]:
    rng = np.random.default_rng(0)
    lat = []
    for k in range(loops):
        t0 = time.perf_counter()
        b = client.lease(name, BATCH, worker="bench", lease_seconds=60)
        res = [{"item_id": it["id"], "rewards": rng.integers(0, 2, GROUP).tolist(), "policy_version": 0,
                "rollout_id": f"{tag}-{k}-{j}"} for j, it in enumerate(b["items"])]
        client.report(name, res, b["batch_id"])
        lat.append(time.perf_counter() - t0)
    return lat


def xadd_ceiling(redis_url: str, record: dict, n: int = 2000) -> float:
    """Records/s for pipelined XADD of this record (the owner writes one per call, unpipelined: also measured)."""
    import redis

    r = redis.Redis.from_url(redis_url)
    payload = json.dumps(record, separators=(",", ":"))
    t0 = time.perf_counter()
    for _ in range(n):
        r.xadd("bench:xadd", {"r": payload})
    single = n / (time.perf_counter() - t0)
    r.delete("bench:xadd")
    return single


def stats(lat: list[float]) -> dict:
    a = np.array(lat) * 1000
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "loops_per_s": float(1000 / a.mean()), "events_per_s": float(BATCH * 1000 / a.mean())}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", type=int, default=300)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--strategy", default="sec")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "controller.json"))
    args = ap.parse_args(argv)

    from deploy.local import LocalStack
    from services.client import CurriculumClient, InClusterClient
    from services.redis_server import free_port

    stack = LocalStack(Path(tempfile.mkdtemp(prefix="bench-ctl-")), port=free_port()).start()
    try:
        items = [{"id": f"q{i}", "prompt": f"{i}+{i % 7}=", "category": f"d{i % 8}"} for i in range(args.items)]
        http = CurriculumClient(stack.url)
        http.create_experiment("bench", args.strategy, items=items)
        loop(http, "bench", 20, "warm")
        rest = stats(loop(http, "bench", args.loops, "rest"))
        inc = InClusterClient(stack.redis_url)
        loop(inc, "bench", 20, "warm2")
        incl = stats(loop(inc, "bench", args.loops, "inc"))
        rec = {"op": "report", "batch_id": "b-000001", "now": time.time(),
               "results": [{"item_id": f"q{j}", "rewards": [1, 0, 1, 1, 0, 0, 1, 0], "rollout_id": f"x-{j}"}
                           for j in range(BATCH)]}
        xadd = xadd_ceiling(stack.redis_url, rec)
    finally:
        stack.stop()
    xadd_events = xadd * BATCH
    out = {"batch": BATCH, "group_size": GROUP, "items": args.items, "strategy": args.strategy, "loops": args.loops,
           "rest": rest, "in_cluster": incl, "redis_xadd_records_per_s": xadd,
           "redis_xadd_events_per_s": xadd_events,
           "rest_share_of_xadd_ceiling": rest["events_per_s"] / xadd_events,
           "in_cluster_share_of_xadd_ceiling": incl["events_per_s"] / xadd_events}
    print(f"\nController loop (lease {BATCH} + report {BATCH} x {GROUP}), {args.items:,} items, {args.strategy}, "
          f"{args.loops} loops:\n")
    print("| path | p50 ms | p99 ms | loops/s | reward events/s | share of Redis XADD ceiling |")
    print("|---|---:|---:|---:|---:|---:|")
    for k, label in (("rest", "REST (httpx -> Serve -> owner)"), ("in_cluster", "in-cluster client (owner handle)")):
        s = out[k]
        print(f"| {label} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {s['loops_per_s']:.0f} | {s['events_per_s']:,.0f} | "
              f"{out[k + '_share_of_xadd_ceiling']:.1%} |")
    print(f"| Redis XADD of the same report record (unpipelined) | | | {xadd:,.0f} records/s | {xadd_events:,.0f} | 100% |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")
    return out


if __name__ == "__main__":
    main()
