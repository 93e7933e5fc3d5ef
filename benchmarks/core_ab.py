"""CPU ms per cycle of a few strategies at 10^6 items, 4 reports per step, in one process: for A/B runs of two trees
in the same sitting (PYTHONPATH at the old tree, then at the new one, alternating). With --exclude every select()
gets a pool-sized exclude mask, as the experiment always passes one (its leased items).

    PYTHONPATH=TREE python benchmarks/core_ab.py egsr compose gated screen [--exclude]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from core_throughput import BATCH, GROUP, make_pool, measure  # noqa: E402

from curriculum import EventBatch, make_strategy  # noqa: E402


def with_exclude(name: str, pool, cycles: int = 60, repeats: int = 4) -> list[float]:
    """CPU ms per cycle of select(BATCH, exclude) + 4 reports, per repeat (the first one dropped: warm-up)."""
    rng = np.random.default_rng(0)
    s = make_strategy(name, pool, seed=0, group_size=GROUP)
    exclude = np.zeros(pool.size, dtype=bool)
    out = []
    for rep in range(repeats):
        p0 = time.process_time()
        for c in range(cycles):
            sel = s.select(BATCH, exclude)
            v = rep * cycles + c + 1
            for lo in range(0, BATCH, BATCH // 4):
                idx = sel.indices[lo:lo + BATCH // 4]
                s.observe(EventBatch(idx, (rng.random((len(idx), GROUP)) < 0.5).astype(float), np.full(len(idx), v)))
        s.describe()
        out.append(1000 * (time.process_time() - p0) / cycles)
    return sorted(out[1:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("strategies", nargs="+")
    ap.add_argument("--exclude", action="store_true")
    args = ap.parse_args()
    pool = make_pool(1_000_000)
    for name in args.strategies:
        if args.exclude:
            ms = with_exclude(name, pool)
            print(f"{name:10s} with exclude: CPU ms/cycle min {ms[0]:.2f} median {ms[len(ms) // 2]:.2f}", flush=True)
        else:
            r = measure(name, pool, 60, 3, 4)
            print(f"{name:10s} CPU ms/cycle {1000 * BATCH / r['cpu_events_per_s']:.2f}  CPU events/s "
                  f"{r['cpu_events_per_s']:,.0f}  wall events/s {r['events_per_s']:,.0f}", flush=True)


if __name__ == "__main__":
    main()
