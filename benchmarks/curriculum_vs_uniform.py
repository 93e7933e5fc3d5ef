"""The real pipeline (`curriculum run`), default curriculum against `uniform`, over seeds: rollouts and wall time
until the greedy score on the hardest trained level reaches a target, final scores, degenerate share, and the
controller's share of the students' busy time.

    .venv/bin/python benchmarks/curriculum_vs_uniform.py [--seeds 0 1 2] [--config FILE] [--target 0.5]

Rollouts are counted where they are spent: every group a student generated (degenerate and stale ones included)
times its size, read off the rollout queue's `produced` counter at each evaluation. The score is the items' own
verifier (per-digit partial credit for arithmetic) under greedy decoding; exact-match accuracy is reported too.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from deploy.cmd_run import run_pipeline

RESULTS = Path(__file__).parent / "results"


def curve(run: dict, level: str, group_size: int) -> list[dict]:
    """(rollouts, seconds, score, exact) at every evaluation of the hardest level."""
    return [{"rollouts": h["queue"]["produced"] * group_size, "seconds": h["time"] - run["started"],
             "score": h["eval_score"][level], "exact": h["eval"][level], "all_scores": h["eval_score"],
             "all_exact": h["eval"]}
            for h in run["history"] if "eval" in h]


def to_target(points: list[dict], target: float) -> dict | None:
    return next((p for p in points if p["score"] >= target), None)


def summarise(seeds: list[dict], target: float) -> dict:
    out: dict[str, dict] = {}
    for name in seeds[0]["runs"]:
        rows = [s["runs"][name] for s in seeds]
        hit = [r["to_target"] for r in rows if r["to_target"]]
        med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
        out[name] = {"reached": len(hit), "seeds": len(rows),
                     "rollouts_to_target_median": med([h["rollouts"] for h in hit]),
                     "seconds_to_target_median": med([h["seconds"] for h in hit]),
                     "final_score_median": med([r["final_score"] for r in rows]),
                     "final_exact_median": med([r["final_exact"] for r in rows]),
                     "rollouts_median": med([r["rollouts"] for r in rows]),
                     "wall_s_median": med([r["wall_s"] for r in rows]),
                     "degenerate_ratio_median": med([r["degenerate_ratio"] for r in rows]),
                     "controller_share_median": med([r["controller_share"] for r in rows])}
    return out


def table(result: dict) -> str:
    lines = [f"Hardest level {result['level']}, target greedy score {result['target']}, seeds {result['seed_list']} "
             "(medians)", "",
             "| strategy | reached | rollouts to target | seconds to target | final score | final exact | "
             "rollouts | wall s | degenerate | controller share |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    for name, s in result["summary"].items():
        lines.append(f"| {name} | {s['reached']}/{s['seeds']} | {fmt(s['rollouts_to_target_median'], ',.0f')} | "
                     f"{fmt(s['seconds_to_target_median'], '.0f')} | {fmt(s['final_score_median'], '.3f')} | "
                     f"{fmt(s['final_exact_median'], '.3f')} | {fmt(s['rollouts_median'], ',.0f')} | "
                     f"{fmt(s['wall_s_median'], '.0f')} | {fmt(s['degenerate_ratio_median'], '.2f')} | "
                     f"{fmt(s['controller_share_median'], '.1%')} |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for k, name in enumerate(result["summary"]):
        for s in result["per_seed"]:
            pts = s["runs"][name]["curve"]
            ax.plot([p["rollouts"] for p in pts], [p["score"] for p in pts], color=f"C{k}", alpha=0.8,
                    label=name if s is result["per_seed"][0] else None)
    ax.axhline(result["target"], color="grey", ls=":")
    ax.set_xlabel("rollouts generated")
    ax.set_ylabel(f"greedy score on {result['level']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--config", default=None, help="RunConfig YAML (default: RunConfig defaults)")
    p.add_argument("--target", type=float, default=0.5, help="greedy score to reach on the hardest level")
    p.add_argument("--out", default="runs/bench-e2e")
    args = p.parse_args(argv)
    per_seed = []
    for seed in args.seeds:
        rep = run_pipeline(args.config, None, {"seed": seed, "compare": ["uniform"], "out": f"{args.out}/seed{seed}"})
        full = json.loads((Path(args.out) / f"seed{seed}" / "metrics.json").read_text())
        group_size = full["config"]["group_size"]
        level = sorted(full["runs"][0]["history"][-1]["eval"], key=lambda c: (len(c), c))[-1]
        runs = {}
        for run, s in zip(full["runs"], rep["summary"]):
            pts = curve(run, level, group_size)
            runs[s["strategy"]] = {"curve": pts, "to_target": to_target(pts, args.target),
                                   "final_score": pts[-1]["score"], "final_exact": pts[-1]["exact"],
                                   "rollouts": s["rollouts"], "wall_s": s["wall_s"],
                                   "degenerate_ratio": s["degenerate_ratio"],
                                   "controller_share": s["controller_share"]}
        per_seed.append({"seed": seed, "level": level, "runs": runs})
    result = {"target": args.target, "level": per_seed[0]["level"], "seed_list": args.seeds, "per_seed": per_seed,
              "summary": summarise(per_seed, args.target)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "curriculum_vs_uniform.json").write_text(json.dumps(result, indent=1))
    md = table(result)
    (RESULTS / "curriculum_vs_uniform.md").write_text(md + "\n")
    plot(result, RESULTS / "curriculum_vs_uniform.png")
    print(md)
    return result


if __name__ == "__main__":
    main()
