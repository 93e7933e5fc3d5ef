"""Every strategy against `uniform` on the simulated student (curriculum/simulator.py), over several seeds, in
the conditions real training has:

* `noisy`   — the default student: 6 learnable levels + 1 noisy category (rewards Bernoulli(0.5), teaches
              nothing; 1/7 of the pool): rollouts to the target accuracy, share of rollouts on the noisy
              category, degenerate-group ratio;
* `4 workers` — the same student, each step's batch leased and reported by 4 workers (a quarter each, same
              policy version, reports in shuffled order): results must match 1 worker within noise;
* `clean`   — no noisy category (the papers' setting);
* `paper`   — noisy student, the noise guard switched off (the papers' rules as published), for the
              strategies that have one;
* Syllabus' curricula (LearningProgress, OnlineLearningProgress, PrioritizedLevelReplay) over the same arms,
  run in their own venv (.venv-syllabus, scripts/venv.sh syllabus) by benchmarks/peers/syllabus_sim.py, when
  that venv exists;
* `rollout_filter`: rolls out k*n random candidates and keeps the mixed groups (DAPO dynamic sampling), paying
  for every rollout — the rollout-based filtering PCL is meant to beat.

    .venv/bin/python benchmarks/strategies.py [--seeds 5] [--budget 200000]     (also: curriculum simulate)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from curriculum.registry import DEFAULT_STRATEGY, strategy_class
from curriculum.simulator import BASELINE, SimConfig, compare, summarize

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
SYLLABUS_PY = ROOT / ".venv-syllabus" / "bin" / "python"

#: the rows: label -> {"name", "params"}; `compose:` rows are the candidates for the service's default
ROWS: dict[str, dict] = {
    **{n: {"name": n, "params": {}} for n in
       ("uniform", "schedule", "progress", "sec", "dump", "filter", "pcl", "posterior", "irt", "compose")},
    **{f"compose:{a}x{i}": {"name": "compose", "params": {"arm": {"name": a}, "item": {"name": i}}}
       for a, i in (("dump", "filter"), ("dump", "pcl"), ("dump", "irt"), ("progress", "filter"))},
    BASELINE: {"name": BASELINE, "params": {}},
}


def guarded(spec: dict) -> bool:
    return spec["name"] != BASELINE and "noise_guard" in strategy_class(spec["name"]).Params.model_fields


def paper(spec: dict) -> dict:
    return {**spec, "params": {**spec["params"], "noise_guard": {"enabled": False}}}


def is_default(spec: dict) -> bool:
    return spec["name"] == DEFAULT_STRATEGY["name"] and spec["params"] == DEFAULT_STRATEGY["params"]


def syllabus(args, cfg: SimConfig, out: Path) -> dict | None:
    """Syllabus' curricula on the same student, in their own venv; None when that venv is not set up. With
    --reuse-peers, the peer JSON of an earlier run (same file) is read instead (their code did not change)."""
    if args.reuse_peers and out.exists():
        return {label: summarize(rs, cfg) for label, rs in json.loads(out.read_text())["runs"].items()}
    if not SYLLABUS_PY.exists():
        return None
    cmd = [str(SYLLABUS_PY), str(Path(__file__).parent / "peers" / "syllabus_sim.py"), "--seeds", str(args.seeds),
           "--budget", str(cfg.budget), "--noisy", str(cfg.noisy), "--workers", str(cfg.workers), "--out", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=sys.stderr)
    peer = json.loads(out.read_text())
    return {label: summarize(rs, cfg) for label, rs in peer["runs"].items()}


def table(result: dict) -> str:
    cfg, seeds = result["config"], result["seeds"]
    v = result["variants"]
    base = {k: v[k]["uniform"]["rollouts_to_target_median"] for k in ("noisy", "clean")}
    lines = [
        f"Simulated student: {cfg['categories']} levels x {cfg['items_per_category']} items + "
        f"{cfg['noisy']} noisy category (Bernoulli(0.5) rewards, teaches nothing), batch {cfg['batch']} x "
        f"{cfg['group_size']} rollouts, target accuracy {cfg['target']} (mean over the learnable levels), budget "
        f"{cfg['budget']:,} rollouts, {seeds} seeds; medians (IQR). A run that never reaches the target counts "
        "as the budget. ★ = the service's default.",
        "",
        "| strategy | noisy: rollouts to target | reached | vs uniform | on noisy category | "
        "degenerate: run / to target | 4 workers: rollouts | 4w / 1w | clean: rollouts | vs uniform | "
        "paper rule (no guard), noisy: rollouts | on noisy category |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = sorted(v["noisy"], key=lambda k: v["noisy"][k]["rollouts_to_target_median"])
    for label in rows:
        s, w4, cl, pp = (v[k].get(label) for k in ("noisy", "workers4", "clean", "paper"))
        lo, hi = s["rollouts_to_target_iqr"]
        star = " ★" if result["default"] == label else ""
        cells = [f"{label}{star}", f"{s['rollouts_to_target_median']:,.0f} ({lo:,.0f}–{hi:,.0f})",
                 f"{s['reached']}/{seeds}", f"{base['noisy'] / s['rollouts_to_target_median']:.2f}x",
                 f"{s['noisy_share_median']:.1%}",
                 f"{s['degenerate_ratio_median']:.2f} / {s.get('degenerate_to_target_median', float('nan')):.2f}"]
        cells += [f"{w4['rollouts_to_target_median']:,.0f}",
                  f"{w4['rollouts_to_target_median'] / s['rollouts_to_target_median']:.2f}"] if w4 else ["–", "–"]
        cells += [f"{cl['rollouts_to_target_median']:,.0f}",
                  f"{base['clean'] / cl['rollouts_to_target_median']:.2f}x"] if cl else ["–", "–"]
        cells += [f"{pp['rollouts_to_target_median']:,.0f}", f"{pp['noisy_share_median']:.1%}"] if pp else ["–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, key, title in (
        (axes[0], "noisy", "with a noisy category"),
        (axes[1], "clean", "without (the papers' setting)"),
    ):
        for label, runs in result["runs"][key].items():
            n = min(len(r["curve_accuracy"]) for r in runs)
            acc = np.median([r["curve_accuracy"][:n] for r in runs], axis=0)
            bold = label in ("uniform", BASELINE) or label == result["default"]
            ax.plot(runs[0]["curve_rollouts"][:n], acc, label=label + (" ★" if label == result["default"] else ""),
                    lw=2.5 if bold else 1.1, ls="--" if label in ("uniform", BASELINE) else "-")
        ax.axhline(result["config"]["target"], color="grey", lw=0.8)
        ax.set_xlabel("rollouts")
        ax.set_ylabel("accuracy (mean over learnable levels), median over seeds")
        ax.set_title(f"Simulated student {title}")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(out: Path) -> None:
    """Write the table and plot again from a result JSON (e.g. after the default changed)."""
    result = json.loads(out.with_suffix(".json").read_text())
    result["default"] = next((k for k, spec in ROWS.items() if is_default(spec) and k in result["variants"]["noisy"]),
                             None)
    out.with_suffix(".json").write_text(json.dumps(result))
    out.with_suffix(".md").write_text(table(result) + "\n")
    plot(result, out.with_suffix(".png"))
    print(table(result))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=SimConfig().budget)
    ap.add_argument("--strategies", nargs="+", default=None, help=f"row labels (default: all of {', '.join(ROWS)})")
    ap.add_argument("--out", default=str(RESULTS / "strategies"))
    ap.add_argument("--render", action="store_true", help="only redraw the table and plot from --out's JSON")
    ap.add_argument("--reuse-peers", action="store_true", help="read the Syllabus rows of an earlier run's peer JSONs")
    args = ap.parse_args(argv)
    if args.render:
        render(Path(args.out))
        return {}
    rows = {k: ROWS[k] for k in (args.strategies or ROWS)}
    if "uniform" not in rows:
        rows = {"uniform": ROWS["uniform"], **rows}
    default = next((k for k, spec in rows.items() if is_default(spec)), None)
    base = SimConfig(budget=args.budget)
    variants = {"noisy": (base, rows), "workers4": (base.model_copy(update={"workers": 4}), rows),
                "clean": (base.model_copy(update={"noisy": 0}), rows),
                "paper": (base, {k: paper(s) for k, s in rows.items() if guarded(s)})}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"config": base.model_dump(), "seeds": args.seeds, "default": default, "variants": {}, "runs": {}}
    for key, (cfg, specs) in variants.items():
        print(f"[{key}]", flush=True)
        res = compare(
            specs, seeds=args.seeds, cfg=cfg, progress=lambda n, s: s == args.seeds - 1 and print(f"  {n}", flush=True)
        )
        result["variants"][key], result["runs"][key] = res["summary"], res["runs"]
        if key != "paper":
            peer = syllabus(args, cfg, out.with_name(f"{out.name}-syllabus-{key}.json"))
            if peer:
                result["variants"][key].update(peer)
    text = table(result)
    print("\n" + text)
    out.with_suffix(".json").write_text(json.dumps(result))
    out.with_suffix(".md").write_text(text + "\n")
    plot(result, out.with_suffix(".png"))
    print(f"\nwrote {out}.json, {out}.md, {out}.png")
    return result


if __name__ == "__main__":
    main()
