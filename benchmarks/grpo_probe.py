"""Can GRPO teach the tiny model a level at all? A single-process probe, outside the service: SFT warm start on a
mix of levels, then plain GRPO (the trainer's `grpo_step`, the `hf` backend, the items' verifier) on chosen
levels drawn uniformly; greedy exact / partial-credit scores per level every `--every` steps.

    .venv/bin/python benchmarks/grpo_probe.py --train d2 --lr 3e-4                      # d2 alone
    .venv/bin/python benchmarks/grpo_probe.py --train d1 d1.5                            # a finer level: 2+1 digits
    .venv/bin/python benchmarks/grpo_probe.py --warm d1=0.8 d2=0.1 d3=0.1 --train d1 d2 d3   # every level's format
    .venv/bin/python benchmarks/grpo_probe.py --sft-steps 1000 --train d1 d2 d3 [--lsd-first]  # longer warm start;
                                                          # operands and answer written units digit first

Level `d1.5` is a 2-digit + 1-digit sum (order random), between the built-in `d1` and `d2`.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from curriculum.items import Item
from curriculum.sources import items_from_source
from workers.backends.hf import HFBackend
from workers.grpo import GRPOConfig, Group, grpo_step, sft_step
from workers.model import TinyModelConfig, build_tiny_model
from workers.verifiers import Verifier, digits, exact, extract_answer, register

RESULTS = Path(__file__).parent / "results"


def digits_lsd(item, completion: str) -> float:
    """`digits` partial credit for numbers written units digit first: reversed back, then right-aligned."""
    return digits({**item, "answer": str(item.get("answer", ""))[::-1]}, extract_answer(completion)[::-1])


register("digits_lsd", digits_lsd)


def lsd_first(it: Item) -> Item:
    """"12+47=" -> "59" becomes "21+74=" -> "95": each answer digit then sits where its operand digits sit."""
    a, b = it.prompt.rstrip("=").split("+")
    return it.model_copy(update={"prompt": f"{a[::-1]}+{b[::-1]}=", "answer": it.answer[::-1],
                                 "metadata": {"verifier": "digits_lsd"}})


def levels(n: int, seed: int, prefix: str) -> dict[str, list[Item]]:
    out: dict[str, list[Item]] = {}
    for it in items_from_source({"kind": "arithmetic", "min_digits": 1, "max_digits": 3, "items_per_level": n,
                                 "seed": seed, "id_prefix": prefix}):
        out.setdefault(it.category, []).append(it)
    rng = np.random.default_rng([seed, 15])
    mixed = []
    for k in range(n):
        a, b = int(rng.integers(10, 100)), int(rng.integers(0, 10))
        a, b = (b, a) if rng.random() < 0.5 else (a, b)
        mixed.append(Item(id=f"{prefix}-d1.5-{k}", prompt=f"{a}+{b}=", answer=str(a + b), category="d1.5",
                          difficulty=1.5, metadata={"verifier": "digits"}))
    out["d1.5"] = mixed
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warm", nargs="+", default=["d1=1"], help="SFT mix, level=share (default: d1 only)")
    p.add_argument("--sft-steps", type=int, default=300)
    p.add_argument("--train", nargs="+", default=["d2"], help="levels GRPO draws from, uniformly")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lsd-first", action="store_true", help="write operands and answers units digit first")
    args = p.parse_args(argv)
    train, held_out = levels(400, 0, "t"), levels(40, 10_007, "e")
    if args.lsd_first:
        train, held_out = ({k: [lsd_first(i) for i in v] for k, v in lv.items()} for lv in (train, held_out))
    evals = [it for lv in held_out.values() for it in lv]
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model, tok = build_tiny_model(TinyModelConfig())
    mix = {k: float(v) for k, v in (w.split("=") for w in args.warm)}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(args.sft_steps):
        batch = [train[lv][k] for lv, share in mix.items() for k in rng.choice(400, round(64 * share))]
        sft_step(model, opt, tok, [i.prompt for i in batch], [i.answer for i in batch])
    be, verifier = HFBackend("", model=model, tokenizer=tok, device="cpu"), Verifier()

    def evaluate() -> dict[str, list[float]]:
        outs = be.generate([i.prompt for i in evals], 1, 6, temperature=0)
        per: dict[str, list[tuple[float, float]]] = {}
        for it, o in zip(evals, outs):
            d = it.model_dump()
            per.setdefault(it.category, []).append((exact(d, o[0].text), verifier.score(d, o[0].text)))
        return {k: [round(float(np.mean([a for a, _ in v])), 3), round(float(np.mean([b for _, b in v])), 3)]
                for k, v in sorted(per.items())}

    rows = [{"step": 0, "seconds": 0.0, "eval": evaluate()}]
    pool = [it for lv in args.train for it in train[lv]]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    cfg, t0 = GRPOConfig(lr=args.lr), time.time()
    for step in range(1, args.steps + 1):
        batch = [pool[k] for k in rng.choice(len(pool), 32, replace=False)]
        gens = be.generate([i.prompt for i in batch], 8, 6, temperature=1.0, seed=step)
        groups = [Group(c[0].prompt_ids, [x.token_ids for x in c], [x.logprobs for x in c],
                        [verifier.score(i.model_dump(), x.text) for x in c], i.category) for i, c in zip(batch, gens)]
        grpo_step(model, opt, groups, cfg, tok.pad_token_id)
        if step % args.every == 0:
            rows.append({"step": step, "seconds": round(time.time() - t0, 1), "eval": evaluate()})
    cols = sorted(rows[0]["eval"])
    print(f"warm {mix} ({args.sft_steps} SFT steps), GRPO on {args.train}, lr {args.lr}"
          f"{', units digit first' if args.lsd_first else ''}: greedy exact / partial credit per level")
    print("| step | " + " | ".join(cols) + " |\n|---:|" + "---|" * len(cols))
    for r in rows:
        print(f"| {r['step']} | " + " | ".join(f"{r['eval'][c][0]:.2f} / {r['eval'][c][1]:.2f}" for c in cols) + " |")
    result = {"args": vars(args), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    tag = "-".join(args.train) + ("" if mix == {"d1": 1.0} else "-warm-" + "-".join(mix))
    tag += f"-sft{args.sft_steps}" if args.sft_steps != 300 else ""
    tag += "-lsd" if args.lsd_first else ""
    (RESULTS / f"grpo_probe_{tag}.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
