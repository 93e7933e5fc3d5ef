"""Core throughput: select(256) + observe(256 groups x 8 rewards) cycles per second, per strategy, at 10^4
and 10^6 items, with each step reported in 1 or 4 reports. Median over repeats, by the wall clock and by this
process's CPU time (on a shared machine the CPU time is the core's own cost; the wall clock adds whatever the
other processes take).

Units: a *reward event* is one reward, as in issue 19's fleet sum (1,000 students x 64 prompts x 8 rewards every
10 s = 51k events/s); a *group* is one prompt's 8 rewards, and the strategies fold per group, so the table gives
both: rewards/s = 8 x groups/s.

    .venv/bin/python benchmarks/core_throughput.py [--sizes 10000 1000000] [--cycles 200] [--repeats 3]
        [--before OLD.json]     (adds a "before" column: the same rows of an earlier run's JSON output)

The target (issue 19): >= 500k reward events/s (62.5k groups/s) for every strategy at 10^6 items and 4 reports
per step, by CPU time.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from curriculum import EventBatch, ItemPool, make_strategy, strategy_names

BATCH, GROUP = 256, 8
TARGET = 500_000


def make_pool(n: int, categories: int = 8) -> ItemPool:
    items = [{"id": f"q{i}", "prompt": f"{i % 997}+{i % 89}=", "category": f"d{i % categories}",
              "difficulty": float(i % categories)} for i in range(n)]
    return ItemPool(items)


def measure(name: str, pool: ItemPool, cycles: int, repeats: int, reports: int = 1) -> dict:
    """Each cycle is one curriculum step (policy version): select BATCH, observe it as `reports` reports (the
    rollout workers' shares, in a shuffled order); the next select() reads the state, so the step is folded."""
    rng = np.random.default_rng(0)
    strat = make_strategy(name, pool, seed=0, group_size=GROUP)
    rewards = (rng.random((cycles, BATCH, GROUP)) < 0.5).astype(np.float64)
    bounds = np.linspace(0, BATCH, reports + 1).astype(int)
    shares = [(int(bounds[j]), int(bounds[j + 1])) for j in range(reports)]
    orders = [rng.permutation(reports).tolist() for _ in range(cycles)]
    version = 0

    def cycle(c: int) -> int:
        nonlocal version
        sel = strat.select(BATCH)
        version += 1
        for j in orders[c]:
            lo, hi = shares[j]
            strat.observe(EventBatch(sel.indices[lo:hi], rewards[c, lo:hi], np.full(hi - lo, version)))
        return len(sel)

    for c in range(3):  # warm-up (first-use allocations, arm member caches)
        cycle(c)
    rates, cpu_rates = [], []
    for _ in range(repeats):
        events = 0
        t0, p0 = time.perf_counter(), time.process_time()
        for c in range(cycles):
            events += cycle(c)
        strat.describe()  # the last step's reports are folded too
        rates.append(events / (time.perf_counter() - t0))
        cpu_rates.append(events / max(time.process_time() - p0, 1e-9))
    med, cpu = float(np.median(rates)), float(np.median(cpu_rates))
    # events_per_s counts groups (the keys keep earlier runs' JSON comparable); rewards = GROUP x groups
    return {"strategy": name, "items": pool.size, "reports_per_step": reports, "events_per_s": med,
            "cpu_events_per_s": cpu, "cpu_rewards_per_s": GROUP * cpu, "cycles_per_s": med / BATCH,
            "ms_per_cycle": 1000 * BATCH / med}


def table(rows: list[dict], before: dict[tuple, dict]) -> str:
    """Markdown table; `before` maps (strategy, items, reports) to an earlier run's row."""
    out = ["| strategy | items | reports per step | before: groups/s, CPU time | groups/s, wall | "
           f"groups/s, CPU time | rewards/s, CPU time | ms per cycle | >= {TARGET // 1000}k rewards/s (CPU) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in rows:
        old = before.get((r["strategy"], r["items"], r["reports_per_step"]))
        was = "" if old is None else f"{old.get('cpu_events_per_s', float('nan')):,.0f}"
        cpu = r.get("cpu_events_per_s", float("nan"))
        ok = "yes" if GROUP * cpu >= TARGET else "no"
        out.append(f"| {r['strategy']} | {r['items']:,} | {r['reports_per_step']} | {was} | {r['events_per_s']:,.0f} | "
                   f"{cpu:,.0f} | {GROUP * cpu:,.0f} | {r['ms_per_cycle']:.2f} | {ok} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--strategies", nargs="+", default=None)
    ap.add_argument("--reports", type=int, nargs="+", default=[1, 4], help="reports per step (rollout workers)")
    ap.add_argument("--before", default=None, help="an earlier run's JSON output: its rows become the before column")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "core_throughput.json"))
    args = ap.parse_args(argv)
    before = {}
    if args.before:
        for r in json.loads(Path(args.before).read_text())["rows"]:
            before[(r["strategy"], r["items"], r["reports_per_step"])] = r
    rows = []
    for n in args.sizes:
        t = time.perf_counter()
        pool = make_pool(n)
        print(f"pool of {n:,} items built in {time.perf_counter() - t:.1f}s", flush=True)
        for name in args.strategies or strategy_names():
            for k in args.reports:
                rows.append(measure(name, pool, args.cycles, args.repeats, k))
                r = rows[-1]
                print(f"  {name:10s} {k} report(s)/step  groups/s {r['events_per_s']:>10,.0f} wall "
                      f"{r['cpu_events_per_s']:>10,.0f} CPU  rewards/s {r['cpu_rewards_per_s']:>11,.0f} CPU  "
                      f"{r['ms_per_cycle']:7.2f} ms/cycle", flush=True)
    print("\n" + table(rows, before))
    out = {"batch": BATCH, "group_size": GROUP, "cycles": args.cycles, "repeats": args.repeats, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")
    return out


if __name__ == "__main__":
    main()
