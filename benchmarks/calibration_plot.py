"""The live calibration of the predicting strategies against policy versions, on the simulated student (one seed):
Spearman of predicted vs realized pass rate, Brier of 'degenerate', and the skip gate's precision / recall on its
re-tests — the figure the run report draws (deploy.report.plot_calibration) from a real run's /state.

    PYTHONPATH=. .venv/bin/python benchmarks/calibration_plot.py [--seed 0] [--budget 60000] \\
        [--out benchmarks/results/calibration.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.predictive_strategies import ROWS
from curriculum.simulator import SimConfig, run
from deploy.report import plot_calibration

LABELS = ("screen", "uniform+screen", "default+skip", "mopps", "greso")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=60_000)
    ap.add_argument("--out", default="benchmarks/results/calibration.png")
    args = ap.parse_args(argv)
    cfg = SimConfig(budget=args.budget, gain_per_sample=True)
    runs, summary = [], []
    for label in LABELS:
        r = run(ROWS[label]["name"], ROWS[label]["params"], args.seed, cfg)
        runs.append({"final_state": {"details": {"calibration": {"history": r["calibration_history"]}}}})
        summary.append({"strategy": label})
        p = r["predictions"]
        print(f"{label}: Spearman {p.get('calibration_spearman', float('nan')):.2f}, "
              f"Brier {p.get('calibration_brier', float('nan')):.3f}")
    plot_calibration(runs, summary, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
