"""The evidence matrix: {setting} x {noise variant} x {strategy} x {seed} on the real GRPO learner, or any slice.

    .venv/bin/python benchmarks/evidence.py --slice smoke            # 1 seed, 2 strategies, 2 (family, noise), short
    .venv/bin/python benchmarks/evidence.py --noise coin mislabeled --strategies default uniform+DS --seeds 0 1 2
    .venv/bin/python benchmarks/evidence.py --report-only            # tables and figures from the cells on disk

One JSON file per cell (benchmarks/results/evidence/<setting>/<noise>/<strategy>/seed<k>.json): a cell on disk
is not run again, so an interrupted matrix resumes where it stopped and can spread over several sittings. Warm
starts are cached (<out>/warm-start, pinned numerics: the same map on every machine). Per setting, the report
writes evidence-<setting>.json, evidence-<setting>.md (the tables) and evidence-<setting>.png (mean target pass
rate against rollouts, per strategy the median across seeds over a min-max band). The metric:
benchmarks/evidence_metric.py. Every strategy runs with the same warm start, trainer, seed and rollout counting;
every one of them gets the trainer's dynamic sampling (zero-advantage groups dropped), hence `uniform+DS`.
uniform+DS runs the setting's steps; every other strategy runs until it has generated as many rollouts as
uniform+DS of its seed did (STEP_CAP x the steps at most), so that each curve is measured up to that budget.
Cells of the earlier fixed-step protocol (every strategy 250 steps) live in <setting>-fixed250.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.evidence_metric import BASELINE, LABELS, TARGET_BAND  # noqa: E402
from curriculum.registry import DEFAULT_STRATEGY  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "evidence"
ARITHMETIC = {"kind": "arithmetic", "min_digits": 1, "max_digits": 5, "items_per_level": 4000, "ops": ["+"],
              "verifier": "exact"}
#: the second family (curriculum/sources/rg_family.py): reasoning-gym basic_arithmetic, one-digit operands, + and
#: -, the number of terms (2-5) as the level; graded exactly
RG_TERMS = {"kind": "rg_family", "dataset": "basic_arithmetic", "knob": ["min_terms", "max_terms"],
            "levels": [2, 3, 4, 5], "items_per_level": 4000, "verifier": "exact"}
#: the run fields every setting pins, so that a change of the main job's defaults (deploy/config.py RunConfig, a
#: demonstration) leaves the evidence as it was measured: 250 GRPO steps of 32 groups x 8, lr 5e-5
PINNED = {"train_steps": 250, "groups_per_step": 32, "group_size": 8, "eval_items_per_level": 256, "eval_every": 25,
          "grpo": {"lr": 5e-5}, "warm_start": {"steps": 1000}}
#: setting -> RunConfig fields over PINNED
SETTINGS = {"arithmetic": {"source": ARITHMETIC},
            "rg-terms": {"source": RG_TERMS, "warm_start": {"steps": 500, "mix": {"t2": 1.0, "t3": 1.0}}}}
#: noise variant -> source fields (curriculum/sources/arithmetic.py)
NOISE = {"none": {"noise": "none"}, "coin": {"noise": "coin", "noise_items": 4000},
         "mislabeled": {"noise": "mislabeled"}, "judge": {"noise": "judge"}}
#: label -> (registry name, params); oracle-target's arms are the run's target levels
STRATEGIES = {"default": (DEFAULT_STRATEGY["name"], DEFAULT_STRATEGY["params"]), BASELINE: ("uniform", {}),
              "uniform+guard": ("uniform_guard", {}), "filter": ("filter", {}), "dump": ("dump", {}),
              "oracle-target": ("target_only", {}),
              "mopps": ("mopps", {}), "greso": ("greso", {}),
              "screen": ("screen", {"inner": DEFAULT_STRATEGY}), "gain": ("gain", {}),
              "default+skip": ("gated", {"inner": DEFAULT_STRATEGY}),
              # the ladder's 2nd level (rg-terms: t3, the warm start's pass rate nearest 0.5), never moved
              "coach": ("coach", {}), "fixed-middle": ("coach", {"frozen": True, "start": 1}),
              # half the arm draws by arm size (uniform's mix), half by DUMP: every arm keeps >= half its uniform
              # share. f = 0.5 was chosen before any run, not tuned.
              "default+floor": ("compose", {"arm": {"name": "dump", "params": {"uniform_share": 0.5}},
                                            "item": {"name": "filter"}})}
assert list(STRATEGIES) == LABELS
#: smaller runs: `short` is the smoke slice's (a fresh clone finishes it in a few minutes), `tiny` the test's
SIZES = {"short": {"warm_start": {"steps": 200}, "source_items": 500, "eval_items_per_level": 48, "train_steps": 12,
                   "eval_every": 4},
         "tiny": {"warm_start": {"steps": 10}, "source_items": 40, "eval_items_per_level": 6, "train_steps": 2,
                  "eval_every": 1, "groups_per_step": 4, "rollout_batch": 8}}
#: a slice is a product of its lists, or of its (setting, noise) `pairs` with strategies and seeds; the smoke
#: slice has one pair per family, so that adding a family does not double its time
SLICES = {"smoke": {"pairs": [("arithmetic", "coin"), ("rg-terms", "mislabeled")],
                    "strategies": ["default", BASELINE], "seeds": [0], "size": "short"},
          "required": {"setting": list(SETTINGS), "noise": list(NOISE), "strategies": ["default", BASELINE],
                       "seeds": [0, 1, 2, 3, 4]},
          "baselines": {"setting": ["arithmetic"], "noise": ["coin", "mislabeled"], "strategies": LABELS[:6],
                        "seeds": [0, 1, 2, 3, 4]},
          # issue 17: the predicting strategies beside the default and uniform+DS, one realistic variant per family
          "predictive": {"pairs": [("arithmetic", "coin"), ("rg-terms", "mislabeled")],
                         "strategies": LABELS[6:11], "seeds": [0, 1, 2, 3, 4]},
          # issue 18: the attribute curriculum against a fixed middle level (default and uniform+DS: `required`)
          "attributes": {"pairs": [("rg-terms", "none")], "strategies": LABELS[11:13], "seeds": [0, 1, 2, 3, 4]},
          # issue 16's proposed fix, on the noise-free variants (where the hardest level's loss is the plainest)
          "floor": {"pairs": [("arithmetic", "none"), ("rg-terms", "none")], "strategies": ["default+floor"],
                    "seeds": [0, 1, 2, 3, 4]}}


#: every strategy but uniform+DS runs until it has generated uniform+DS's rollouts of the same (setting, noise,
#: seed): the metric reads each curve up to that budget, and a run stopped at a fixed step count ends early
#: wherever a strategy wastes fewer rollouts per step (the default: a third of uniform+DS's on arithmetic), its
#: curve then read flat to the budget. The step count becomes a cap, STEP_CAP x the setting's.
STEP_CAP = 4


def run_config(setting: str, noise: str, label: str, seed: int, size: str | None, out: Path, steps: int | None,
               budget: int | None = None):
    from deploy.config import RunConfig, StrategyChoice

    fields = {**copy.deepcopy(PINNED), **copy.deepcopy(SETTINGS[setting])}
    fields["warm_start"] = {**PINNED["warm_start"], **SETTINGS[setting].get("warm_start", {})}
    fields["source"] = {**fields["source"], **NOISE[noise]}
    if size:
        fields["source"]["items_per_level"] = SIZES[size]["source_items"]
        if noise == "coin":
            fields["source"]["noise_items"] = SIZES[size]["source_items"]
        fields.update({k: v for k, v in SIZES[size].items() if k not in ("source_items", "warm_start")})
        fields["warm_start"].update(SIZES[size]["warm_start"])
    if steps:
        fields["train_steps"] = steps
    if budget is not None:
        fields["rollout_budget"] = budget
        fields["train_steps"] *= STEP_CAP
    name, params = STRATEGIES[label]
    slug = f"ev-{setting[:6]}-{noise[:5]}-{label.replace('+', '-')}-s{seed}".lower()
    return RunConfig.model_validate({**fields, "name": slug, "seed": seed, "compare": [],
                                     "strategy": StrategyChoice(name=name, params=copy.deepcopy(params)),
                                     "target_band": TARGET_BAND, "out": str(out),
                                     "warm_start_cache": str(out.parent / "warm-start")})


def cell_path(out: Path, setting: str, noise: str, label: str, seed: int, size: str | None,
              steps: int | None = None) -> Path:
    """Cells of a smaller run or of another step count live apart from the setting's own."""
    name = setting + (f"-{size}" if size else "") + (f"-steps{steps}" if steps else "")
    return out / name / noise / label / f"seed{seed}.json"


def run_cell(stack, cfg, label: str, path: Path) -> dict:
    """One training run; its record goes to `path` only when complete (so an interrupted cell runs again)."""
    from deploy.config import StrategyChoice, target_levels
    from deploy.pipeline import drop_experiment, prepare_policy, run_one
    from deploy.report import calibration_history, predictions, target_curve
    from services.incluster import InClusterClient

    t0 = time.time()
    folder = Path(cfg.out)
    policy, warm = prepare_policy(cfg, folder)
    targets = target_levels(cfg, warm["pass_rate"])
    strategy = cfg.strategy
    if label == "oracle-target":
        strategy = StrategyChoice(name=strategy.name, params={"arms": targets})
    run = run_one(cfg, strategy, stack, policy, folder, targets)
    # the record keeps what the cell measured; an idle owner per finished cell would cost CPU and memory
    # (~1% of a core and ~190 MB each) for the rest of a many-cell sitting
    drop_experiment(InClusterClient(stack.redis_url), stack.redis_url, f"{cfg.name}-{strategy.name}")
    base = sum(warm["pass_rate"][c] for c in targets) / max(len(targets), 1)
    by_cat = run["rollouts_by_category"]
    evals = [h for h in run["history"] if "eval" in h]
    record = {"label": label, "strategy": strategy.model_dump(), "seed": cfg.seed, "source": cfg.source,
              "warm_start": {k: warm[k] for k in ("pass_rate", "greedy", "checksum", "weights_checksum") if k in warm},
              "targets": targets, "warm_target": base, "target": min(base + cfg.target_gain, 1.0),
              "curve": target_curve(run, targets, cfg.group_size, warm), "rollouts": run["rollouts"],
              "rollouts_by_category": by_cat,
              "final": {"pass_rate": evals[-1]["eval_pass"], "greedy": evals[-1]["eval"]} if evals else {},
              "arm_weights": run["history"][-1]["arm_weights"] if run["history"] else {},
              "degenerate_share": run["final_state"]["degenerate_ratio"],
              # the service's own accounting: cost in rollouts and tokens, the lease-time predictions' calibration
              **predictions(run["final_state"]), "calibration_history": calibration_history(run),
              # the curve's last point holds the steps run; train_steps is a cap where a budget is set
              "train_steps": cfg.train_steps, "rollout_budget": cfg.rollout_budget,
              "run_wall_s": round(run["wall_s"], 1),
              "cell_wall_s": round(time.time() - t0, 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_text(json.dumps(record, indent=1))
    path.with_suffix(".tmp").rename(path)
    return record


def run_matrix(args) -> None:
    from deploy.local import LocalStack
    from services.redis_server import free_port

    pairs = args.pairs or [(s, n) for s in args.setting for n in args.noise]
    # uniform+DS first in each seed: its rollouts are the others' budget (run even when not asked for)
    labels = [BASELINE] + [lab for lab in args.strategies if lab != BASELINE]
    cells = [(s, n, lab, seed) for s, n in pairs for seed in args.seeds for lab in labels]
    todo = [c for c in cells if not cell_path(args.out, *c, args.size, args.steps).exists()]
    print(f"{len(cells)} cells (uniform+DS included: the budget), {len(cells) - len(todo)} on disk, "
          f"{len(todo)} to run", flush=True)
    if not todo:
        return
    stack = LocalStack(args.out / "stack", port=args.port or free_port())
    stack.start()
    try:
        for setting, noise, label, seed in todo:
            path = cell_path(args.out, setting, noise, label, seed, args.size, args.steps)
            base = cell_path(args.out, setting, noise, BASELINE, seed, args.size, args.steps)
            budget = None if label == BASELINE else json.loads(base.read_text())["curve"][-1]["rollouts"]
            cfg = run_config(setting, noise, label, seed, args.size, args.out / "work", args.steps, budget)
            print(f"cell {setting}/{noise}/{label}/seed{seed} ...", flush=True)
            rec = run_cell(stack, cfg, label, path)
            print(f"cell {setting}/{noise}/{label}/seed{seed}: {rec['cell_wall_s']:.0f} s, "
                  f"final target pass rate {rec['curve'][-1]['pass_rate']:.3f}", flush=True)
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> None:
    from benchmarks.evidence_report import write_reports

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slice", choices=sorted(SLICES), help="a named slice (the flags below narrow nothing then)")
    ap.add_argument("--setting", nargs="+", default=list(SETTINGS), choices=sorted(SETTINGS))
    ap.add_argument("--noise", nargs="+", default=list(NOISE), choices=list(NOISE))
    ap.add_argument("--strategies", nargs="+", default=["default", BASELINE], choices=list(STRATEGIES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--size", choices=sorted(SIZES), help="a smaller run (short: the smoke slice's)")
    ap.add_argument("--steps", type=int, help="GRPO steps (default: the setting's)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--port", type=int, default=0, help="controller port (0: a free one)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    args.pairs = None
    if args.slice:
        sl = SLICES[args.slice]
        args.pairs = sl.get("pairs") or [(s, n) for s in sl["setting"] for n in sl["noise"]]
        args.strategies, args.seeds, args.size = sl["strategies"], sl["seeds"], sl.get("size")
    if not args.report_only:
        run_matrix(args)
    for path in write_reports(args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
