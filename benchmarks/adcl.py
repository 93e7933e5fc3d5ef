"""ADCL on the SIMULATED student (curriculum/simulator.py; METHODS.md §D4): `adcl` vs `schedule` (linear competence)
vs `uniform`, at equal total rollouts, ADCL's probe rollouts included (every generated completion is paid).

The simulator's items carry their level as prior difficulty (noisy items carry none, so they rank last: ADCL meets
them in its last chunk, as a predefined order would). Reported: rollouts to the target accuracy and final accuracy,
mean with a 95% bootstrap CI over seeds, and ADCL's probe share of the rollouts. Simulated-student numbers, not a
trained model; "no effect at this scale" is a result.

    PYTHONPATH=. .venv/bin/python benchmarks/adcl.py [--seeds 5] [--budget 200000] [--noisy 1] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from curriculum.items import ItemPool
from curriculum.registry import make_strategy
from curriculum.simulator import SimConfig, SimulatedStudent, train

OUT = Path(__file__).parent / "results" / "adcl.json"
ROWS = {  # label: (strategy, params)
    "uniform": ("uniform", {}),
    "schedule (linear)": ("schedule", {"kind": "linear", "c0": 0.1, "horizon": 300}),
    "adcl (chunk 256, K 10)": ("adcl", {"chunk_size": 256, "g_est": 4, "period": 10}),
    "adcl (chunk 128, K 5)": ("adcl", {"chunk_size": 128, "g_est": 4, "period": 5}),
    # the ablation: the same chunks and periods in the prior order, no probes (what re-estimation adds)
    "chunks, prior order (256, 10)": ("adcl", {"chunk_size": 256, "period": 10, "reestimate": False}),
    "chunks, prior order (128, 5)": ("adcl", {"chunk_size": 128, "period": 5, "reestimate": False}),
}


def run(name: str, params: dict, seed: int, cfg: SimConfig) -> dict:
    student = SimulatedStudent(cfg, seed)
    strat = make_strategy(name, ItemPool(student.items()), params, seed=seed, group_size=cfg.group_size)
    out = train(strat, student, cfg, seed, name)  # probe groups are trained on too (no eval-only lease)
    probes = strat.describe()["details"].get("probes")
    out["probe_rollouts"] = probes["rollouts"] if probes else 0
    return out


def mean_ci(x: list[float], seed: int = 0, n: int = 2000) -> tuple[float, float, float]:
    """Mean and a 95% percentile-bootstrap CI."""
    a = np.asarray(x, dtype=np.float64)
    boot = np.random.default_rng(seed).choice(a, (n, len(a))).mean(axis=1)
    return float(a.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=200_000)
    ap.add_argument("--noisy", type=int, default=1, help="coin-flip categories (0: a clean pool)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    cfg = SimConfig(budget=args.budget, noisy=args.noisy)
    summary = {}
    print(f"| strategy | rollouts to accuracy {cfg.target} (mean, 95% CI; budget if never) | reached | "
          "final accuracy (mean, 95% CI) | probe share | noisy share |")
    print("|---|---|---|---|---|---|")
    for label, (name, params) in ROWS.items():
        runs = [run(name, params, s, cfg) for s in range(args.seeds)]
        to_t = [r["rollouts_to_target"] or cfg.budget for r in runs]
        s = {"rollouts_to_target": mean_ci(to_t), "reached": sum(r["rollouts_to_target"] is not None for r in runs),
             "final_accuracy": mean_ci([r["final_accuracy"] for r in runs]),
             "probe_share": float(np.mean([r["probe_rollouts"] / r["rollouts"] for r in runs])),
             "noisy_share": float(np.mean([r["noisy_share"] for r in runs])),
             "rollouts": float(np.mean([r["rollouts"] for r in runs]))}
        summary[label] = s
        (m, lo, hi), (a, alo, ahi) = s["rollouts_to_target"], s["final_accuracy"]
        print(f"| {label} | {m:,.0f} ({lo:,.0f}-{hi:,.0f}) | {s['reached']}/{args.seeds} | {a:.3f} ({alo:.3f}-"
              f"{ahi:.3f}) | {s['probe_share']:.3f} | {s['noisy_share']:.3f} |", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"note": "simulated student, not a trained model; probes counted as rollouts",
                                    "config": cfg.model_dump(), "seeds": args.seeds, "rows": ROWS,
                                    "summary": summary}, indent=1))
    print(f"wrote {args.out}")
    return summary


if __name__ == "__main__":
    main()
