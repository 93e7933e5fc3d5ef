"""h1 chains on the REAL GRPO learner (issue 18): the horizon curriculum against training at the target horizon
only (h1's baseline) and uniform over the horizons, at an equal rollout budget, evaluated at a longer horizon too.

Setting: the `chain` source (arithmetic step 1 "a=x+y", steps 2..h add or subtract a digit, values in [0, 99],
only the final answer graded exactly), horizons 1..H+1. The tiny policy is warm-started (pinned numerics) on the
horizons of `--sft` (default h1 only: it can do single steps), then each strategy trains on horizons 1..H;
horizon H+1 is never trained, only evaluated (h1 evaluates beyond the trained horizons). The answer comes with no
intermediate results written out, so a horizon-h chain is one h-term sum for the policy (like rg-terms' terms):
`--sft h1 h2` also teaches two-step chains, the tiny model's stand-in for a base model that can partly chain.

    horizon      h1's stage-wise curriculum (`horizon`, its defaults; its ladder is h1..hH)
    target-only  every draw at h = H (h1's baseline: `target_only` over hH)
    uniform      uniform over h1..hH (`target_only` over those arms)

Each run stops once its students generated `--budget` samples (every sample counts: degenerate groups too), so
the strategies spend the same rollouts. Metric: per evaluation, the pass rate (8 samples at T = 1 on 128 fresh
chains per horizon, paired across strategies) at H and at H+1; primary: rollouts until the trailing mean of 3
evaluations of p(H) reaches the warm start's p(H) + 0.15; secondary: p(H) and p(H+1) at 50% and 100% of the budget.

    PYTHONPATH=. .venv/bin/python benchmarks/chains_real.py [--sft h1] [--seeds 0] [--horizon 3] [--budget 100000]
        [--strategies horizon target-only uniform] [--size tiny] [--out benchmarks/results/chains_real]

One JSON per run (<out>/sft-<horizons>/<strategy>/seed<k>.json; a run on disk is not run again), then
chains_real.{md,json,png} in <out>/sft-<horizons>.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.evidence_metric import rollouts_to_target, value_at  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "chains_real"
GAIN = 0.15
#: run fields of every strategy (the evidence benchmark's learner: groups of 8, 32 a step, lr 5e-5)
RUN = {"group_size": 8, "groups_per_step": 32, "train_steps": 1000, "eval_every": 20, "eval_items_per_level": 128,
       "max_tokens": 4, "grpo": {"lr": 5e-5}, "warm_start": {"steps": 300}, "compare": []}
SIZES = {"tiny": {"train_steps": 50, "eval_every": 1, "eval_items_per_level": 4, "groups_per_step": 4,
                  "rollout_batch": 8, "warm_start": {"steps": 10}}}


def strategies(h: int) -> dict[str, dict]:
    ladder = [f"h{k}" for k in range(1, h + 1)]
    return {"horizon": {"name": "horizon", "params": {"arms": ladder}},
            "target-only": {"name": "target_only", "params": {"arms": [f"h{h}"]}},
            "uniform": {"name": "target_only", "params": {"arms": ladder}}}


def run_config(label: str, h: int, seed: int, budget: int, size: str | None, out: Path, sft: list[str]):
    from deploy.config import RunConfig

    fields = {**RUN, **(SIZES[size] if size else {})}
    fields["warm_start"] = {**fields["warm_start"], "mix": {c: 1.0 for c in sft}}
    return RunConfig.model_validate({
        **fields, "name": f"chains-{label}-s{seed}", "seed": seed, "rollout_budget": budget,
        "source": {"kind": "chain", "max_horizon": h + 1, "per_arm": 128, "ops": ["+", "-"]},
        "strategy": strategies(h)[label], "out": str(out / "work"), "warm_start_cache": str(out / "warm-start")})


def run(stack, label: str, h: int, seed: int, budget: int, size: str | None, out: Path, sft: list[str]) -> dict:
    from deploy.pipeline import prepare_policy, run_one

    t0 = time.time()
    cfg = run_config(label, h, seed, budget, size, out, sft)
    policy, warm = prepare_policy(cfg, Path(cfg.out))
    levels = [f"h{h}", f"h{h + 1}"]
    res = run_one(cfg, cfg.strategy, stack, policy, Path(cfg.out), levels)
    curve = [{"step": 0, "rollouts": 0, **{c: warm["pass_rate"][c] for c in levels}}] + [
        {"step": x["step"], "rollouts": x["queue"]["produced_samples"], **{c: x["eval_pass"][c] for c in levels}}
        for x in res["history"] if "eval_pass" in x]
    last = res["history"][-1]
    return {"label": label, "seed": seed, "horizon": h, "budget": budget, "sft": sft,
            "strategy": cfg.strategy.model_dump(),
            "warm_start": {k: warm[k] for k in ("pass_rate", "greedy", "checksum") if k in warm},
            "curve": curve, "steps": last["step"], "rollouts": res["rollouts"],
            "rollouts_by_category": res["rollouts_by_category"],
            "final": {"pass_rate": last.get("eval_pass", {}), "greedy": last.get("eval", {})},
            "degenerate_share": res["final_state"]["degenerate_ratio"], "wall_s": round(time.time() - t0, 1)}


def level_curve(r: dict, level: str) -> list[dict]:
    return [{"rollouts": p["rollouts"], "pass_rate": p[level]} for p in r["curve"]]


def summarise(records: list[dict]) -> dict:
    out = {}
    for label in dict.fromkeys(r["label"] for r in records):
        rows = []
        for r in (x for x in records if x["label"] == label):
            hH, hL = f"h{r['horizon']}", f"h{r['horizon'] + 1}"
            H, L = level_curve(r, hH), level_curve(r, hL)
            target = r["curve"][0][hH] + GAIN
            rows.append({"seed": r["seed"], "target": target, "to_target": rollouts_to_target(H, target),
                         "H_50": value_at(H, 0.5 * r["budget"]), "H_100": value_at(H, r["budget"]),
                         "L_50": value_at(L, 0.5 * r["budget"]), "L_100": value_at(L, r["budget"]),
                         "steps": r["steps"], "degenerate_share": r["degenerate_share"], "wall_s": r["wall_s"],
                         "by_category": r["rollouts_by_category"]})
        reached = [x["to_target"] for x in rows if x["to_target"] is not None]
        out[label] = {"seeds": rows, "reached": len(reached), "to_target_median": statistics.median(reached)
                      if len(reached) == len(rows) else None,
                      **{k: statistics.median(x[k] for x in rows)
                         for k in ("H_50", "H_100", "L_50", "L_100", "degenerate_share", "wall_s")}}
    return out


def write_report(records: list[dict], out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summarise(records)
    h = records[0]["horizon"]
    base = s.get("target-only", {}).get("to_target_median")
    lines = [f"| strategy | seeds | reached p(h{h}) target | rollouts to target (median) | vs target-only | "
             f"p(h{h}) at 50% / 100% | p(h{h + 1}) at 50% / 100% (never trained) | degenerate share | steps |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, x in s.items():
        med = x["to_target_median"]
        vs = f"{base / med:.2f}x" if base and med else ("-" if label == "target-only" else "n/a")
        lines.append(f"| {label} | {len(x['seeds'])} | {x['reached']}/{len(x['seeds'])} | "
                     f"{'-' if med is None else f'{med:,}'} | {vs} | {x['H_50']:.3f} / {x['H_100']:.3f} | "
                     f"{x['L_50']:.3f} / {x['L_100']:.3f} | {x['degenerate_share']:.2f} | "
                     f"{statistics.median(r['steps'] for r in x['seeds']):.0f} |")
    table = "\n".join(lines)
    (out / "chains_real.md").write_text(table + "\n")
    (out / "chains_real.json").write_text(json.dumps({"summary": s, "records": records}, indent=1))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for k, label in enumerate(s):
        for r in (x for x in records if x["label"] == label):
            for ax, c in zip(axes, (f"h{h}", f"h{h + 1}")):
                ax.plot([p["rollouts"] for p in r["curve"]], [p[c] for p in r["curve"]], color=f"C{k}",
                        label=label if r["seed"] == min(x["seed"] for x in s[label]["seeds"]) else None)
    for ax, title in zip(axes, (f"target horizon h{h}", f"h{h + 1} (never trained)")):
        ax.set(title=title, xlabel="rollouts generated", ylabel="pass rate (T = 1)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "chains_real.png", dpi=100)
    plt.close(fig)
    return table


def main(argv: list[str] | None = None) -> None:
    from deploy.local import LocalStack
    from services.redis_server import free_port

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--horizon", type=int, default=3, help="the target horizon H (trained: 1..H; evaluated: H+1)")
    ap.add_argument("--budget", type=int, default=100_000, help="rollouts (samples) per run")
    ap.add_argument("--strategies", nargs="+", default=list(strategies(1)), choices=list(strategies(1)))
    ap.add_argument("--size", choices=sorted(SIZES), help="a smaller run (tiny: the test's)")
    ap.add_argument("--sft", nargs="+", default=["h1"], help="horizons of the SFT warm start")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if any(c not in [f"h{k}" for k in range(1, args.horizon + 1)] for c in args.sft):
        ap.error(f"--sft takes trained horizons h1..h{args.horizon}")
    args.out = args.out / f"sft-{'-'.join(args.sft)}"
    path = lambda label, seed: args.out / label / f"seed{seed}.json"  # noqa: E731
    todo = [(lab, s) for s in args.seeds for lab in args.strategies if not path(lab, s).exists()]
    print(f"{len(args.seeds) * len(args.strategies) - len(todo)} runs on disk, {len(todo)} to run", flush=True)
    if todo:
        stack = LocalStack(args.out / "stack", port=free_port())
        stack.start()
        try:
            for label, seed in todo:
                rec = run(stack, label, args.horizon, seed, args.budget, args.size, args.out, args.sft)
                path(label, seed).parent.mkdir(parents=True, exist_ok=True)
                path(label, seed).write_text(json.dumps(rec, indent=1))
                print(f"{label}/seed{seed}: {rec['wall_s']:.0f} s, {rec['steps']} steps, final "
                      f"{rec['final']['pass_rate']}", flush=True)
        finally:
            stack.stop()
    records = [json.loads(path(lab, s).read_text()) for s in args.seeds for lab in args.strategies]
    print(write_report(records, args.out))


if __name__ == "__main__":
    main()
