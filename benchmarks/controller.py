"""Controller loop latency: lease a batch of 64 + report 64 x 8 rewards, over REST and through the in-cluster
client (no HTTP), as two calls (lease; report) and as one (`next_batch`: report + lease), against a real local
Ray + Serve + Redis; and, in the same run, the Redis XADD ceiling for the same records, as a ratio. Each path
runs behind both of Serve's HTTP ingresses (HAProxy, the local default when its binary is installed; and the
Python proxy, Serve's default, as the baseline), one fresh stack each.

    .venv/bin/python benchmarks/controller.py [--loops 300] [--items 10000] [--strategy sec]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

BATCH, GROUP = 64, 8


def results_for(batch: dict, rng, tag: str) -> list[dict]:
    return [{"item_id": it["id"], "rewards": rng.integers(0, 2, GROUP).tolist(), "policy_version": 0,
             "rollout_id": f"{tag}-{batch['batch_id']}-{j}"} for j, it in enumerate(batch["items"])]


def loop(client, name: str, loops: int, tag: str) -> list[float]:
    """Two calls per loop: lease, then report."""
    rng = np.random.default_rng(0)
    lat = []
    for _k in range(loops):
        t0 = time.perf_counter()
        b = client.lease(name, BATCH, worker="bench", lease_seconds=60)
        client.report(name, results_for(b, rng, tag), b["batch_id"])
        lat.append(time.perf_counter() - t0)
    return lat


def loop_one_call(client, name: str, loops: int, tag: str) -> list[float]:
    """One call per loop: report the previous batch and lease the next (`next_batch`)."""
    rng = np.random.default_rng(0)
    b = client.lease(name, BATCH, worker="bench", lease_seconds=60)
    lat = []
    for _k in range(loops):
        t0 = time.perf_counter()
        b = client.next_batch(name, BATCH, results_for(b, rng, tag), b["batch_id"], worker="bench", lease_seconds=60)
        lat.append(time.perf_counter() - t0)
    return lat


def xadd_ceiling(redis_url: str, record: dict, n: int = 2000) -> tuple[float, float]:
    """Records/s for XADD of this record: one command per call as the owner does, and pipelined (batches of 64)."""
    import redis

    r = redis.Redis.from_url(redis_url)
    payload = json.dumps(record, separators=(",", ":"))
    t0 = time.perf_counter()
    for _ in range(n):
        r.xadd("bench:xadd", {"r": payload})
    single = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(n // 64):
        p = r.pipeline(transaction=False)
        for _ in range(64):
            p.xadd("bench:xadd", {"r": payload})
        p.execute()
    piped = (n // 64 * 64) / (time.perf_counter() - t0)
    r.delete("bench:xadd")
    return single, piped


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

    from deploy.local import LocalStack, haproxy_binary
    from services.client import CurriculumClient
    from services.incluster import InClusterClient
    from services.redis_server import free_port

    items = [{"id": f"q{i}", "prompt": f"{i}+{i % 7}=", "category": f"d{i % 8}"} for i in range(args.items)]
    out: dict = {"batch": BATCH, "group_size": GROUP, "items": args.items, "strategy": args.strategy,
                 "loops": args.loops, "cpus": os.cpu_count()}
    # Serve's HTTP ingress is chosen when Ray starts: one stack per ingress, the default Python proxy as baseline
    ingresses = ["haproxy", "proxy"] if haproxy_binary() else ["proxy"]
    for ingress in ingresses:
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1" if ingress == "haproxy" else "0"
        stack = LocalStack(Path(tempfile.mkdtemp(prefix="bench-ctl-")), port=free_port()).start()
        try:
            http = CurriculumClient(stack.url)
            http.create_experiment("bench", args.strategy, items=items)
            inc = InClusterClient(stack.redis_url)
            paths = {"rest": (http, loop), "rest_one_call": (http, loop_one_call),
                     "in_cluster": (inc, loop), "in_cluster_one_call": (inc, loop_one_call)}
            res = {}
            for key, (client, fn) in paths.items():
                fn(client, "bench", 20, f"warm-{key}")
                res[key] = stats(fn(client, "bench", args.loops, key))
            # the floor of any REST call here: the ingress -> replica hop with no work behind it
            healthz = []
            for _ in range(args.loops):
                t = time.perf_counter()
                http.healthz()
                healthz.append(time.perf_counter() - t)
            res["healthz"] = stats(healthz)
            out[ingress] = res
            if "redis_xadd_records_per_s" not in out:
                rec = {"op": "report", "batch_id": "b-000001", "now": time.time(),
                       "results": [{"item_id": f"q{j}", "rewards": [1, 0, 1, 1, 0, 0, 1, 0], "rollout_id": f"x-{j}"}
                                   for j in range(BATCH)]}
                xadd, xadd_piped = xadd_ceiling(stack.redis_url, rec)
                out.update(redis_xadd_records_per_s=xadd, redis_xadd_pipelined_records_per_s=xadd_piped,
                           redis_xadd_events_per_s=xadd * BATCH)
        finally:
            stack.stop()
    out["load_avg_1m"] = os.getloadavg()[0]
    print(f"\nController loop (lease {BATCH} + report {BATCH} x {GROUP}), {args.items:,} items, {args.strategy}, "
          f"{args.loops} loops, {os.cpu_count()} cores, load {out['load_avg_1m']:.1f}:\n")
    print("| path | stack's HTTP ingress | p50 ms | p99 ms | loops/s | reward events/s | share of Redis XADD ceiling |")
    print("|---|---|---:|---:|---:|---:|---:|")
    labels = {"rest": "REST, 2 calls (lease; report)", "rest_one_call": "REST, 1 call (next_batch: report + lease)",
              "in_cluster": "in-cluster, 2 calls (owner handle)", "in_cluster_one_call": "in-cluster, 1 call",
              "healthz": "GET /healthz (the HTTP hop alone)"}
    for key, label in labels.items():
        for ingress in ingresses:
            s = out[ingress][key]
            share = "" if key == "healthz" else f"{s['events_per_s'] / out['redis_xadd_events_per_s']:.1%}"
            events = "" if key == "healthz" else f"{s['events_per_s']:,.0f}"
            print(f"| {label} | {ingress} | {s['p50_ms']:.1f} | "
                  f"{s['p99_ms']:.1f} | {s['loops_per_s']:.0f} | {events} | {share} |")
    print(
        f"| Redis XADD of one report record, unpipelined (pipelined: {out['redis_xadd_pipelined_records_per_s']:,.0f}"
        f"/s) | | | | {out['redis_xadd_records_per_s']:,.0f} records/s | {out['redis_xadd_events_per_s']:,.0f} | 100% |"
    )
    if len(ingresses) == 2:
        for key in ("rest", "rest_one_call"):
            out[f"{key}_p50_speedup_haproxy"] = out["proxy"][key]["p50_ms"] / out["haproxy"][key]["p50_ms"]
        print(f"\nHAProxy against the Python proxy, REST p50: {out['rest_p50_speedup_haproxy']:.2f}x faster (2 calls), "
              f"{out['rest_one_call_p50_speedup_haproxy']:.2f}x (1 call)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")
    return out


if __name__ == "__main__":
    main()
