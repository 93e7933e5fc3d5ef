"""The learner alone, outside the service: the warm start's pass-rate map, then plain GRPO (the trainer's
`grpo_step`, the `hf` backend, the items' verifiers) on items drawn uniformly from chosen categories, with the
pass-rate map every `--every` steps. Used to choose the main job's setting: does the warm start leave a spread
of pass rates, and does GRPO raise the partly solved levels within a CPU budget?

    .venv/bin/python benchmarks/grpo_probe.py                                  # the main job's default setting
    .venv/bin/python benchmarks/grpo_probe.py --mix d1=1 d2=1 d3=0.3 --sft-steps 1000 --train d3
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from curriculum.sources import items_from_source
from deploy.config import RunConfig, eval_items
from deploy.pipeline import prepare_policy
from workers.backends.hf import HFBackend
from workers.grpo import Group, grpo_step
from workers.model import load_policy
from workers.verifiers import Verifier
from workers.warm_start import pass_rates

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mix", nargs="+", default=None, help="SFT mix, level=share (default: the run's)")
    p.add_argument("--sft-steps", type=int, default=None)
    p.add_argument("--sft-lr", type=float, default=None)
    p.add_argument("--train", nargs="+", default=None, help="categories GRPO draws from, uniformly (default: all)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=None, help="GRPO learning rate (default: the run's)")
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="default")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # see deploy.pipeline.prepare_policy
    cfg = RunConfig(seed=args.seed)
    ws = cfg.warm_start.model_copy(update={k: v for k, v in {
        "steps": args.sft_steps, "lr": args.sft_lr,
        "mix": {k: float(v) for k, v in (w.split("=") for w in args.mix)} if args.mix else None}.items() if v})
    cfg = cfg.model_copy(update={"warm_start": ws, "grpo": cfg.grpo.model_copy(update={"lr": args.lr or cfg.grpo.lr})})
    path, warm = prepare_policy(cfg, Path("runs/probe"))  # the main job's warm start (and its cache)
    model, tok = load_policy(path)
    evals = eval_items(cfg)
    rows = [{"step": 0, "rollouts": 0, "seconds": 0.0, "map": [warm["pass_rate"], warm["greedy"]]}]
    pool = [it for it in items_from_source(cfg.source) if not args.train or it.category in args.train]
    rng = np.random.default_rng(args.seed)
    be, verifier = HFBackend("", model=model, tokenizer=tok, device="cpu"), Verifier()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.grpo.lr)
    t0, rollouts = time.time(), 0
    order, cursor = rng.permutation(len(pool)), 0
    for step in range(1, args.steps + 1):
        live: list[Group] = []
        while len(live) < cfg.groups_per_step:  # as the trainer: a step takes groups_per_step non-degenerate groups
            batch = [pool[k] for k in order[cursor: cursor + cfg.rollout_batch]]
            cursor += cfg.rollout_batch
            if cursor >= len(order):  # epoch-wise shuffling without replacement, as `uniform`
                order, cursor = rng.permutation(len(pool)), 0
            gens = be.generate([i.prompt for i in batch], cfg.group_size, cfg.max_tokens, cfg.temperature,
                               seed=int(rng.integers(2**31)))
            groups = [Group(c[0].prompt_ids, [x.token_ids for x in c], [x.logprobs for x in c],
                            [verifier.score({**i.model_dump(), "sample_key": f"{step}/{rollouts}/{k}"}, x.text)
                             for k, x in enumerate(c)], i.category, temperature=cfg.temperature)
                      for i, c in zip(batch, gens)]
            rollouts += sum(len(g.completions) for g in groups)
            live += [g for g in groups if not g.degenerate]
        grpo_step(model, opt, live[: cfg.groups_per_step], cfg.grpo, tok.pad_token_id)
        if step % args.every == 0:
            rows.append({"step": step, "rollouts": rollouts, "seconds": round(time.time() - t0, 1),
                         "map": pass_rates(model, tok, evals, cfg.max_tokens, cfg.group_size, cfg.temperature)})
            print(f"step {step} rollouts {rollouts:,} {rows[-1]['seconds']:.0f}s " + " ".join(
                f"{c}={rows[-1]['map'][0][c]:.2f}/{rows[-1]['map'][1][c]:.2f}" for c in sorted(rows[-1]["map"][0])),
                flush=True)
    cols = sorted(rows[0]["map"][0], key=lambda c: (len(c), c))
    print(f"warm start {ws.model_dump()}; GRPO (lr {cfg.grpo.lr}) on {args.train or 'all'}: "
          "pass rate at T / greedy exact per category")
    print("| step | rollouts | " + " | ".join(cols) + " |\n|---:|---:|" + "---|" * len(cols))
    for r in rows:
        print(f"| {r['step']} | {r['rollouts']:,} | " +
              " | ".join(f"{r['map'][0][c]:.2f} / {r['map'][1][c]:.2f}" for c in cols) + " |")
    result = {"args": vars(args), "warm_start": ws.model_dump(), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"grpo_probe_{args.tag}.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
