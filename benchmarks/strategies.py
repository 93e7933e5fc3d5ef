"""Every strategy against `uniform` on the simulated student (curriculum/simulator.py), over several seeds:
rollouts to reach the target accuracy, final accuracy at a fixed rollout budget, degenerate-group ratio —
plus the rollout-based filtering baseline that pays for the rollouts it spends on rejected candidates.

    .venv/bin/python benchmarks/strategies.py [--seeds 5] [--budget 200000]     (also: curriculum simulate)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from curriculum.registry import strategy_names
from curriculum.simulator import BASELINE, SimConfig, compare

RESULTS = Path(__file__).parent / "results"


def table(result: dict) -> str:
    cfg = result["config"]
    lines = [f"Simulated student: {cfg['categories']} levels x {cfg['items_per_category']} items, batch {cfg['batch']} x "
             f"{cfg['group_size']} rollouts, target accuracy {cfg['target']}, budget {cfg['budget']:,} rollouts, "
             f"{result['seeds']} seeds (medians; IQR in brackets)", "",
             "| strategy | rollouts to target | reached | vs uniform | final accuracy | degenerate ratio |",
             "|---|---:|---:|---:|---:|---:|"]
    rows = sorted(result["summary"].items(), key=lambda kv: kv[1]["rollouts_to_target_median"])
    for name, s in rows:
        lo, hi = s["rollouts_to_target_iqr"]
        sp = s["speedup_vs_uniform"]
        lines.append(f"| {name} | {s['rollouts_to_target_median']:,.0f} [{lo:,.0f}–{hi:,.0f}] | "
                     f"{s['reached']}/{result['seeds']} | {sp:.2f}x | {s['final_accuracy_median']:.3f} | "
                     f"{s['degenerate_ratio_median']:.3f} |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, runs in result["runs"].items():
        x = runs[0]["curve_rollouts"]
        n = min(len(r["curve_accuracy"]) for r in runs)
        acc = np.median([r["curve_accuracy"][:n] for r in runs], axis=0)
        ax.plot(x[:n], acc, label=name, lw=2.5 if name in ("uniform", BASELINE) else 1.3,
                ls="--" if name in ("uniform", BASELINE) else "-")
    ax.axhline(result["config"]["target"], color="grey", lw=0.8)
    ax.set_xlabel("rollouts")
    ax.set_ylabel("accuracy (mean over levels), median over seeds")
    ax.set_title("Strategies on the simulated student")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=SimConfig().budget)
    ap.add_argument("--strategies", nargs="+", default=None, help="default: every registered strategy + baseline")
    ap.add_argument("--out", default=str(RESULTS / "strategies"))
    args = ap.parse_args(argv)
    names = args.strategies or [*strategy_names(), BASELINE]
    cfg = SimConfig(budget=args.budget)
    result = compare(names, seeds=args.seeds, cfg=cfg,
                     progress=lambda n, s: print(f"  {n} seed {s} done", flush=True))
    text = table(result)
    print("\n" + text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result))
    out.with_suffix(".md").write_text(text + "\n")
    plot(result, out.with_suffix(".png"))
    print(f"\nwrote {out}.json, {out}.md, {out}.png")
    return result


if __name__ == "__main__":
    main()
