"""mopps, greso, screen and the skip gate (`gated`) against uniform, uniform + dynamic sampling (`rollout_filter`)
and the service's default, on the simulated student (curriculum/simulator.py; the `noisy` setting of
benchmarks/strategies.py, 1 worker): rollouts to the target accuracy, medians over seeds, and the live
calibration of the predicting rows (Spearman of predicted vs realized pass rate, Brier of 'degenerate', the skip
gate's precision and recall on its re-tests; medians over seeds of the whole-run figures) with the screening
overhead. `--gain-per-sample`: a group teaches in proportion to its samples (fair to screen's 4-sample groups).

    PYTHONPATH=. .venv/bin/python benchmarks/predictive_strategies.py [--seeds 3] [--budget 200000] [--clean]
        [--gain-per-sample] [--rows uniform default screen] [--out results.json]
"""
from __future__ import annotations

import argparse
import json

from curriculum.registry import DEFAULT_STRATEGY
from curriculum.simulator import BASELINE, SimConfig, compare

ROWS: dict[str, dict] = {
    "uniform": {"name": "uniform", "params": {}},
    "uniform+DS": {"name": BASELINE, "params": {}},
    "default": DEFAULT_STRATEGY,
    "mopps": {"name": "mopps", "params": {}},
    "greso": {"name": "greso", "params": {}},
    "dump x mopps": {"name": "compose", "params": {"arm": {"name": "dump"}, "item": {"name": "mopps"}}},
    "dump x greso": {"name": "compose", "params": {"arm": {"name": "dump"}, "item": {"name": "greso"}}},
    "default+skip": {"name": "gated", "params": {"inner": DEFAULT_STRATEGY}},
    "uniform+skip": {"name": "gated", "params": {"inner": {"name": "uniform"}}},
    "default+skip flat": {"name": "gated", "params": {"inner": DEFAULT_STRATEGY, "prior": "flat"}},
    "default+skip flat t0.6": {"name": "gated", "params": {"inner": DEFAULT_STRATEGY, "prior": "flat",
                                                          "skip": {"threshold": 0.6}}},
    "default+skip r4": {"name": "gated", "params": {"inner": DEFAULT_STRATEGY, "skip": {"cost_ratio": 4.0}}},
    "mopps flat": {"name": "mopps", "params": {"prior": "flat"}},
    "greso flat": {"name": "greso", "params": {"prior": "flat"}},
    "screen": {"name": "screen", "params": {"inner": DEFAULT_STRATEGY}},
    "uniform+screen": {"name": "screen", "params": {"inner": {"name": "uniform"}}},
}
CALIBRATION = (("calibration_spearman", "Spearman", ".2f"), ("calibration_brier", "Brier", ".3f"),
               ("skip_gate_precision", "gate precision", ".2f"), ("skip_gate_recall", "gate recall", ".2f"),
               ("screen_rollouts", "screen rollouts", ",.0f"), ("screen_qualified", "screens qualified", ",.0f"))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=200_000)
    ap.add_argument("--clean", action="store_true", help="no noisy category")
    ap.add_argument("--rows", nargs="*", default=list(ROWS))
    ap.add_argument("--gain-per-sample", action="store_true", help="a group's skill gain scales with its size")
    ap.add_argument("--out", help="write the summary as JSON here")
    args = ap.parse_args(argv)
    cfg = SimConfig(budget=args.budget, noisy=0 if args.clean else 1, gain_per_sample=args.gain_per_sample)
    res = compare({k: ROWS[k] for k in args.rows}, seeds=args.seeds, cfg=cfg)
    base = res["summary"].get("default", {}).get("rollouts_to_target_median")
    print("| strategy | rollouts to target (median, IQR) | reached | vs uniform | vs default | "
          "degenerate groups until target |")
    print("|---|---|---|---|---|---|")
    for label, s in res["summary"].items():
        m, (lo, hi) = s["rollouts_to_target_median"], s["rollouts_to_target_iqr"]
        vs_d = f"{base / m:.2f}x" if base else "-"
        vs_u = f"{s['speedup_vs_uniform']:.2f}x" if s["speedup_vs_uniform"] else "-"
        print(f"| {label} | {m:,.0f} ({lo:,.0f}-{hi:,.0f}) | {s['reached']}/{args.seeds} | "
              f"{vs_u} | {vs_d} | {s['degenerate_to_target_median']:.3f} |")
    print("\n| strategy | " + " | ".join(c[1] for c in CALIBRATION) + " |")
    print("|---|" + "---|" * len(CALIBRATION))
    for label, s in res["summary"].items():
        cells = [format(s[k + "_median"], f) if k + "_median" in s else "-" for k, _, f in CALIBRATION]
        if any(c != "-" for c in cells):
            print(f"| {label} | " + " | ".join(cells) + " |")
    summary = {k: {kk: (round(vv, 4) if isinstance(vv, float) else vv) for kk, vv in v.items()}
               for k, v in res["summary"].items()}
    print(json.dumps(summary))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"config": res["config"], "seeds": args.seeds, "summary": summary}, f, indent=1)
    return res


if __name__ == "__main__":
    main()
