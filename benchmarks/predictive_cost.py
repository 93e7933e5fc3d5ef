"""Cost of the per-prompt predictive state (curriculum.predictive) at a large pool: one step's observe and one
selection's p_degenerate / Thompson draw, for a batch of `--batch` items out of `--items`, in microseconds
(median over `--reps` steps; the pool's size does not enter the per-step work, which is O(touched)).

    .venv/bin/python benchmarks/predictive_cost.py [--items 1000000] [--batch 256] [--group 8] [--reps 200]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from curriculum.predictive import PredictiveState


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--decay", type=float, default=0.99)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    s = PredictiveState(args.items, decay=args.decay)
    t: dict[str, list[float]] = {"observe": [], "p_degenerate": [], "thompson": [], "pass_rate": []}
    for v in range(args.reps):
        idx = rng.choice(args.items, args.batch, replace=False)
        r = (rng.random((args.batch, args.group)) < rng.random((args.batch, 1))).astype(np.float64)
        t0 = time.perf_counter()
        s.observe(idx, r, versions=v)
        t1 = time.perf_counter()
        s.p_degenerate(idx, args.group)
        t2 = time.perf_counter()
        s.thompson(idx, rng)
        t3 = time.perf_counter()
        s.pass_rate(idx)
        t4 = time.perf_counter()
        for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            t[k].append(dt * 1e6)
    out = {"items": args.items, "batch": args.batch, "group": args.group, "decay": args.decay,
           "median_us": {k: round(float(np.median(v)), 1) for k, v in t.items()},
           "state_mib": round(sum(a.nbytes for a in (s.alpha, s.beta, s.streak, s.seen, s.last)) / 2**20, 1)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
