"""CLUTR-lite's honest value test (METHODS.md §F5) on the SIMULATED student (curriculum/simulator.py): when the pool
has no categories, arm-level strategies fall back to uniform; `clutr_lite` makes its own arms (clusters of a
frozen prompt encoding) and should recover part of what `sec`/`dump` get from the true categories.

Rows: sec and dump with the true categories; uniform, sec and clutr_lite with every item in one category.
The simulator's prompts are "level {k} item {i}" (the noisy category: "level 6 item ..."), so the surface shows
the level, as real prompts show some of what makes them hard; a real encoder would see more and less. These are
simulated-student numbers, with the noisy category on (`--noisy 0`: without it).

    PYTHONPATH=. .venv/bin/python benchmarks/clutr_lite.py [--seeds 5] [--budget 200000] [--noisy 0 --out PATH]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from curriculum.items import ItemPool
from curriculum.registry import make_strategy
from curriculum.simulator import SimConfig, SimulatedStudent, summarize, train

OUT = Path(__file__).parent / "results" / "clutr_lite.json"
ROWS = {  # label: (strategy, params, one category?)
    "sec (true categories)": ("sec", {}, False),
    "dump (true categories)": ("dump", {}, False),
    "uniform (one category)": ("uniform", {}, True),
    "sec (one category)": ("sec", {}, True),
    "clutr_lite (one category)": ("clutr_lite", {}, True),
}


def run(name: str, params: dict, one_category: bool, seed: int, cfg: SimConfig) -> dict:
    """simulator.run, with the categories optionally collapsed into one (the student still knows the levels)."""
    student = SimulatedStudent(cfg, seed)
    items = student.items()
    if one_category:
        items = [{"id": it["id"], "prompt": it["prompt"], "category": "all"} for it in items]
    strat = make_strategy(name, ItemPool(items), params, seed=seed, group_size=cfg.group_size)
    return train(strat, student, cfg, seed, name)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=200_000)
    ap.add_argument("--noisy", type=int, default=1, help="coin-flip categories (0: a clean pool)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    cfg = SimConfig(budget=args.budget, noisy=args.noisy)
    summary = {}
    for label, (name, params, one) in ROWS.items():
        summary[label] = summarize([run(name, params, one, s, cfg) for s in range(args.seeds)], cfg)
    base = summary["uniform (one category)"]["rollouts_to_target_median"]
    print(f"| strategy | rollouts to accuracy {cfg.target} (median, IQR) | reached | vs uniform | noisy share |")
    print("|---|---|---|---|---|")
    for label, s in summary.items():
        m, (lo, hi) = s["rollouts_to_target_median"], s["rollouts_to_target_iqr"]
        print(f"| {label} | {m:,.0f} ({lo:,.0f}-{hi:,.0f}) | {s['reached']}/{args.seeds} | {base / m:.2f}x | "
              f"{s['noisy_share_median']:.3f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"note": "simulated student, not a trained model", "config": cfg.model_dump(),
                                    "seeds": args.seeds, "summary": summary}, indent=1))
    print(f"wrote {args.out}")
    return summary


if __name__ == "__main__":
    main()
