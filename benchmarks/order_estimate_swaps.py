"""Adjacent swaps on the unit test's tiny model (1 layer, width 16; 4 logged GRPO steps of 3 random groups): the
parameter error of FUT-1 and zeroth order against exact replay, for both moment choices of
workers.order_estimate. The numbers behind the choice of `moments="replayed"` (docs/results.md).

    PYTHONPATH=. .venv/bin/python benchmarks/order_estimate_swaps.py     # ~1 min
"""
from __future__ import annotations

import tempfile

import numpy as np
import torch

from workers.grpo import Group, GRPOConfig, grpo_step
from workers.model import TinyModelConfig, build_tiny_model
from workers.order_estimate import exact_replay, linear_replay
from workers.order_log import StepLogger, load_log, logged_grpo_step


def random_groups(model, rng, n=3, size=4) -> list[Group]:
    """Groups of random prompts with completions sampled from `model` itself (so the behaviour logprobs are the
    policy's, as the sampler's are) and random rewards."""
    out = []
    for _ in range(n):
        prompt = [1] + rng.integers(4, 40, 4).tolist()
        comps = [rng.integers(4, 40, int(rng.integers(2, 5))).tolist() for _ in range(size)]
        with torch.no_grad():
            ids = [torch.tensor([prompt + c]) for c in comps]
            lps = []
            for x, c in zip(ids, comps):
                lp = torch.log_softmax(model(input_ids=x).logits[0, :-1], -1)
                lps.append(lp.gather(-1, x[0, 1:, None])[-len(c):, 0].tolist())
        out.append(Group(prompt, comps, lps, rng.random(size).round(2).tolist()))
    return out


def swaps(lr: float, warm: int, moments: str, steps: int = 4) -> list[tuple[float, float, float]]:
    torch.manual_seed(0)
    model, _ = build_tiny_model(TinyModelConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                num_attention_heads=2, max_position_embeddings=32))
    cfg = GRPOConfig(lr=lr)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    for _ in range(warm):
        grpo_step(model, opt, random_groups(model, rng), cfg, 0)
    folder = tempfile.mkdtemp()
    logger = StepLogger(folder, cfg, 0)
    for _ in range(steps):
        logged_grpo_step(model, opt, random_groups(model, rng), cfg, 0, logger=logger)
    logger.finish(model)
    log, out = load_log(folder), []
    for t in range(steps - 1):
        order = list(range(steps))
        order[t], order[t + 1] = order[t + 1], order[t]
        exact = exact_replay(model, log, order)
        est = linear_replay(model, log, order, moments=moments)
        out.append((float((exact - log.final).norm()), float((est["fut1"] - exact).norm()),
                    float((est["zeroth"] - exact).norm())))
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    print("| moments | lr | unlogged steps first | swap at | swap's effect | FUT-1 error | zeroth-order error |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for moments in ("frozen", "replayed"):
        for lr, warm in ((1e-3, 4), (3e-3, 0)):
            for t, (moved, e1, e0) in enumerate(swaps(lr, warm, moments)):
                print(f"| {moments} | {lr:g} | {warm} | {t} | {moved:.2e} | {e1:.2e} | {e0:.2e} |", flush=True)
