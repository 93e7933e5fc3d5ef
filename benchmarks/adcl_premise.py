"""ADCL's premise on the REAL learner (METHODS.md §D4, issue 18): does the policy's view of which items are hard
drift during GRPO training, so that a predefined easy-to-hard order goes stale?

From one logged run's policies (the warm start, then the trainer's checkpoints every 50 steps), each item of a
fixed held-out set (128 fresh arithmetic items per level d1-d4) gets a pass rate p_i(t) from 16 samples at T = 1.
Per checkpoint t:

    level rank     Spearman(level of item i, -p_i(t)) over all items: does the predefined order (digits) still
                   order the items? (95% bootstrap interval over items)
    drift          within each level with spread at the warm start (mean in [0.05, 0.95]), Spearman(p_i(0), p_i(t)):
                   how much of the warm start's within-level order survives
    retest         the same, between two independent 16-sample draws at t: the ceiling that sampling noise
                   leaves; drift well below retest means the order really moved

ADCL's premise holds here if the drift falls below the retest ceiling as training goes on; if the level rank
stays high and drift ~ retest, re-estimating is paying probe rollouts for an order that did not change.

    PYTHONPATH=. .venv/bin/python benchmarks/adcl_premise.py --run-dir RUN_CHECKPOINTS --warm WARM_FOLDER
        [--items 128] [--samples 16] [--out benchmarks/results/adcl_premise.json]

RUN_CHECKPOINTS: a trainer's storage folder (policy-v50, policy-v100, ...), e.g. an evidence cell's
<out>/work/checkpoints/<experiment>; WARM_FOLDER: the warm-start cache folder holding its starting weights.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LEVELS = ["d1", "d2", "d3", "d4"]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from curriculum.calibration import spearman as rank_correlation

    r = rank_correlation(a, b)
    return float("nan") if r is None else r


def held_out(n: int) -> list[dict]:
    from benchmarks.evidence import run_config
    from deploy.config import eval_items

    cfg = run_config("arithmetic", "none", "default", 0, None, Path("/tmp/unused"), None)
    items = eval_items(cfg)
    return [it for lv in LEVELS for it in [x for x in items if x["category"] == lv][:n]]


def item_rates(model, tok, items: list[dict], samples: int, seed: int) -> np.ndarray:
    from workers.warm_start import sampled_scores

    return np.array([np.mean(sc) for sc in sampled_scores(model, tok, items, 6, samples, 1.0, seed)])


def bootstrap(level: np.ndarray, p: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    vals = [spearman(level[i], -p[i]) for i in (rng.integers(0, len(p), len(p)) for _ in range(n))]
    lo, hi = np.nanpercentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--warm", type=Path, required=True)
    ap.add_argument("--items", type=int, default=128)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "adcl_premise.json")
    args = ap.parse_args(argv)
    from workers.model import load_policy

    items = held_out(args.items)
    level = np.array([LEVELS.index(it["category"]) for it in items])
    ckpts = sorted(args.run_dir.glob("policy-v*"), key=lambda p: int(re.search(r"\d+$", p.name).group()))
    policies = [(0, args.warm)] + [(int(re.search(r"\d+$", p.name).group()), p) for p in ckpts]
    base, spread = None, []
    rows = []
    print("| step | mean pass rate d1 / d2 / d3 / d4 | level rank (95% CI) | drift vs warm (per level) | "
          "retest (per level) |")
    print("|---|---|---|---|---|")
    for step, path in policies:
        model, tok = load_policy(str(path))
        a = item_rates(model, tok, items, args.samples, seed=2 * step + 1)
        b = item_rates(model, tok, items, args.samples, seed=2 * step + 2)
        if base is None:  # the levels with spread at the warm start, fixed for every row
            base = a
            spread = [k for k in range(len(LEVELS)) if 0.05 <= a[level == k].mean() <= 0.95]
        drift = {LEVELS[k]: spearman(base[level == k], a[level == k]) for k in spread}
        retest = {LEVELS[k]: spearman(a[level == k], b[level == k]) for k in spread}
        row = {"step": step, "mean": {lv: float(a[level == k].mean()) for k, lv in enumerate(LEVELS)},
               "level_rank": spearman(level, -a), "level_rank_ci": bootstrap(level, a),
               "drift": drift, "retest": retest}
        rows.append(row)
        fmt = lambda d: ", ".join(f"{k} {v:.2f}" for k, v in d.items()) or "-"  # noqa: E731
        print(f"| {step} | {' / '.join(f'{v:.2f}' for v in row['mean'].values())} | {row['level_rank']:.3f} "
              f"({row['level_rank_ci'][0]:.3f}-{row['level_rank_ci'][1]:.3f}) | {fmt(drift)} | {fmt(retest)} |",
              flush=True)
    result = {"run_dir": str(args.run_dir), "items_per_level": args.items, "samples": args.samples, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
