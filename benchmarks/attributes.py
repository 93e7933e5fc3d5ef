"""Attribute curricula on the SIMULATED student (curriculum/simulator.py): `coach` (moves one difficulty level up
past a pass rate, down below another, as reasoning-gym's coaching curricula are moved by hand) against a fixed
middle level (`coach` frozen at the middle) and uniform over the levels, at equal rollouts. These are
simulated-student numbers: the levels stand for reasoning-gym attribute levels (the `rg_levels` source), the
student is the simulator's (per-level skill, transfer to neighbouring levels, learns only from mixed groups), and
its noisy category (a coin-flip grader, no prior difficulty) is off the ladder.

    PYTHONPATH=. .venv/bin/python benchmarks/attributes.py [--seeds 5] [--budget 200000]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from curriculum.registry import DEFAULT_STRATEGY
from curriculum.simulator import SimConfig, compare

OUT = Path(__file__).parent / "results" / "attributes.json"


def rows(levels: int) -> dict[str, dict]:
    middle = (levels - 1) // 2
    return {
        "coach (up 0.7 / down 0.2)": {"name": "coach", "params": {}},
        f"fixed middle (L{middle})": {"name": "coach", "params": {"start": middle, "frozen": True}},
        "uniform": {"name": "uniform", "params": {}},
        "default (dump x filter)": DEFAULT_STRATEGY,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=200_000)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    cfg = SimConfig(budget=args.budget)
    res = compare(rows(cfg.categories), seeds=args.seeds, cfg=cfg)
    print(f"| strategy | rollouts to mean accuracy {cfg.target} (median, IQR) | reached | vs uniform | "
          "final accuracy | final pass rate per level |")
    print("|---|---|---|---|---|---|")
    for label, s in res["summary"].items():
        m, (lo, hi) = s["rollouts_to_target_median"], s["rollouts_to_target_iqr"]
        per = [sum(r["final_per_category"][k] for r in res["runs"][label]) / args.seeds for k in range(cfg.categories)]
        print(f"| {label} | {m:,.0f} ({lo:,.0f}-{hi:,.0f}) | {s['reached']}/{args.seeds} | "
              f"{s['speedup_vs_uniform']:.2f}x | {s['final_accuracy_median']:.3f} | "
              f"{' '.join(f'{p:.2f}' for p in per)} |")
    out = {"note": "simulated student (curriculum/simulator.py), not a trained model", "config": res["config"],
           "seeds": args.seeds, "summary": res["summary"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
