"""The main job (`curriculum run`: the default curriculum and `uniform` on the same warm start and seed) over seeds:
rollouts until the pass rate on the partly solved levels reaches the target, the degenerate share, the share of
rollouts on the noisy category, and where the wall time goes.

    .venv/bin/python benchmarks/curriculum_vs_uniform.py [--seeds 0 1 2] [--config FILE] [--steps N]

The target levels and the target are the run's own (`RunConfig.target_band`, `target_gain`): the levels whose
warm-start pass rate lies in the band, and their mean pass rate at the warm start plus the gain. Rollouts are
counted where they are spent: every group a student generated (degenerate and stale ones included).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from deploy.pipeline import run_pipeline
from deploy.report import TIME_KEYS, label

RESULTS = Path(__file__).parent / "results"
LOWER_GAIN = 0.1


def first_reach(curve: list[dict], level: float) -> int | None:
    return next((p["rollouts"] for p in curve if p["pass_rate"] >= level), None)


def ratio(s: dict) -> str:
    """uniform+DS / curriculum rollouts to target; a lower bound when only the curriculum reached it."""
    if s["speedup"]:
        return f"{s['speedup']:.2f}x"
    return f"> {s['speedup_at_least']:.2f}x" if s.get("speedup_at_least") else "—"


def table(result: dict) -> str:
    names = list(result["per_seed"][0]["summary"])
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    lines = ["| seed | target levels | warm → target | "
             + " | ".join(f"{label(n)}: rollouts to target" for n in names) + " | uniform+DS / curriculum | "
             + " | ".join(f"{label(n)}: degenerate / noise share" for n in names) + " |",
             "|---:|---|---|" + "---:|" * (2 * len(names) + 1)]
    for s in result["per_seed"]:
        r = s["summary"]
        lines.append(
            f"| {s['seed']} | {', '.join(s['targets'])} | {s['warm_target_pass_rate']:.2f} → {s['target']:.2f} | "
            + " | ".join(fmt(r[n]["rollouts_to_target"], ",") for n in names)
            + f" | {ratio(s)} | "
            + " | ".join(f"{r[n]['degenerate_share']:.2f} / {r[n]['noise_share']:.2f}" for n in names)
            + " |"
        )
    lines += ["", f"Lower bar, warm start + {LOWER_GAIN} (a secondary reading of the same curves), and the peak:", "",
              "| seed | " + " | ".join(f"{label(n)}: rollouts to +{LOWER_GAIN} | {label(n)}: peak (rollouts)"
                                      for n in names) + " |",
              "|---:|" + "---:|" * (2 * len(names))]
    for s in result["per_seed"]:
        cells = []
        for n in names:
            r = s["summary"][n]
            peak = max(r["curve"], key=lambda q: q["pass_rate"])
            cells += [fmt(r["rollouts_to_lower"], ","), f"{peak['pass_rate']:.2f} ({peak['rollouts']:,})"]
        lines.append(f"| {s['seed']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| strategy | reached | rollouts to target (median) | final target pass rate | rollouts | wall s | "
        "degenerate | noise share | " + " | ".join(k.removesuffix("_s").replace("_", " ") for k in TIME_KEYS) + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(TIME_KEYS),
    ]
    for n, a in result["summary"].items():
        lines.append(f"| {label(n)} | {a['reached']}/{a['seeds']} | {fmt(a['rollouts_to_target'], ',.0f')} | "
                     f"{a['final_target_pass_rate']:.2f} | {a['rollouts']:,.0f} | {a['wall_s']:.0f} | "
                     f"{a['degenerate_share']:.2f} | {a['noise_share']:.2f} | "
                     + " | ".join(f"{a['time_shares'][k]:.0%}" for k in TIME_KEYS) + " |")
    return "\n".join(lines)


def aggregate(per_seed: list[dict]) -> dict:
    out = {}
    for n in per_seed[0]["summary"]:
        rows = [s["summary"][n] for s in per_seed]
        hit = [r["rollouts_to_target"] for r in rows if r["rollouts_to_target"] is not None]
        med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
        out[n] = {"reached": len(hit), "seeds": len(rows), "rollouts_to_target": med(hit),
                  "final_target_pass_rate": med([r["final_target_pass_rate"] for r in rows]),
                  "rollouts": med([r["rollouts"] for r in rows]), "wall_s": med([r["wall_s"] for r in rows]),
                  "degenerate_share": med([r["degenerate_share"] for r in rows]),
                  "noise_share": med([r["noise_share"] for r in rows]),
                  "time_shares": {k: med([r["time_shares"][k] for r in rows]) for k in TIME_KEYS}}
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(result["per_seed"]), figsize=(5.5 * len(result["per_seed"]), 4), squeeze=False)
    for ax, s in zip(axes[0], result["per_seed"]):
        for k, (n, r) in enumerate(s["summary"].items()):
            ax.plot([p["rollouts"] for p in r["curve"]], [p["pass_rate"] for p in r["curve"]], color=f"C{k}",
                    marker=".", label=label(n))
        ax.axhline(s["target"], color="grey", ls="--", lw=0.8)
        ax.set(title=f"seed {s['seed']}: pass rate on {', '.join(s['targets'])}", xlabel="rollouts generated")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--config", default=None, help="RunConfig YAML (default: RunConfig defaults)")
    p.add_argument("--steps", type=int, default=250, help="GRPO steps (250: the headline's; the main job's "
                   "default is shorter, a demonstration)")
    p.add_argument("--out", default="runs/bench-e2e")
    p.add_argument("--curriculum-from", default=None, metavar="DIR",
                   help="take the curriculum's run of each seed from DIR/seed<N>/metrics.json (a `--compare ''` run "
                   "on the same warm start and seed), the other strategies' from --out")
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument("--resume", action="store_true", help="reuse a seed's finished report in --out (e.g. one "
                   "written by `./scripts/run.sh --out runs/bench-e2e/seed0`)")
    args = p.parse_args(argv)
    per_seed = []
    for seed in args.seeds:
        over = {"seed": seed, "out": f"{args.out}/seed{seed}", "train_steps": args.steps}
        done = Path(over["out"]) / "metrics.json"
        if args.resume and done.exists():
            rep = json.loads(done.read_text())
            assert rep["config"]["seed"] == seed, f"{done} is not seed {seed}"
        else:
            rep = run_pipeline(args.config, None, over)
        if args.curriculum_from:  # e.g. the same seeds re-run under a newer default curriculum
            other = json.loads((Path(args.curriculum_from) / f"seed{seed}" / "metrics.json").read_text())
            assert other["config"]["seed"] == seed and other["warm_start"] == rep["warm_start"], "not the same start"
            rep = {**rep, "summary": other["summary"][:1] + [s for s in rep["summary"][1:]]}
        names = [s["strategy"] for s in rep["summary"]]
        by = {s["strategy"]: s for s in rep["summary"]}
        for r in by.values():
            r["rollouts_to_lower"] = first_reach(r["curve"], rep["warm_target_pass_rate"] + LOWER_GAIN)
        cur, uni = by[names[0]]["rollouts_to_target"], by.get("uniform", {}).get("rollouts_to_target")
        per_seed.append({"seed": seed, "targets": rep["targets"], "target": rep["target"],
                         "warm_target_pass_rate": rep["warm_target_pass_rate"], "warm_start": rep["warm_start"],
                         "job_wall_s": rep.get("job_wall_s"), "summary": by,
                         "speedup": uni / cur if cur and uni else None,
                         # uniform did not reach the target in its whole run: it needed more than all it spent
                         "speedup_at_least": by["uniform"]["rollouts"] / cur if cur and not uni and "uniform" in by
                         else None})
    result = {"seeds": args.seeds, "per_seed": per_seed, "summary": aggregate(per_seed)}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"curriculum_vs_uniform{args.tag}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    md = table(result)
    stem.with_suffix(".md").write_text(md + "\n")
    plot(result, stem.with_suffix(".png"))
    print(md)
    return result


if __name__ == "__main__":
    main()
