"""GAIN-RL (`gain`) measured two ways, short and bounded:

1. On the simulated student (curriculum/simulator.py, the `noisy` setting: 6 levels + 1 noisy category) with a
   **synthetic** per-item `angle` (SimConfig.angle_noise: the initial pass probability plus Gaussian noise; no
   model is behind it, it assumes the paper's premise), against uniform and the service's default: rollouts to
   the target accuracy, medians over seeds. Also `gain` with no feature reported (its uniform fallback).
2. The `hf` backend's cost of the feature (angle concentration + embedding, workers/backends/angles.py) on the
   tiny model on CPU (one torch thread): median µs per prompt of the feature computation next to the prefill
   alone, and of `generate` with the features on and off (interleaved).

    PYTHONPATH=. .venv/bin/python benchmarks/gain.py [--seeds 10] [--reps 30]   -> benchmarks/results/gain.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from curriculum.registry import DEFAULT_STRATEGY
from curriculum.simulator import SimConfig, run, summarize

RESULTS = Path(__file__).parent / "results"

#: label -> (strategy, params, angle_noise of the synthetic feature (None: no feature), known offline)
ROWS = {
    "uniform": ("uniform", {}, None, False),
    "default": (DEFAULT_STRATEGY["name"], DEFAULT_STRATEGY["params"], None, False),
    "gain, no feature (fallback)": ("gain", {}, None, False),
    "gain, synthetic angle, noise 0.05": ("gain", {}, 0.05, False),
    "gain, synthetic angle, noise 0.2": ("gain", {}, 0.2, False),
    "gain, synthetic angle, noise 1.0": ("gain", {}, 1.0, False),
    "gain, synthetic angle offline, noise 0.05": ("gain", {}, 0.05, True),
    "gain step 0.01, synthetic angle, noise 0.05": ("gain", {"step": 0.01}, 0.05, False),
}


def simulated(seeds: int, budget: int) -> dict:
    out = {}
    for label, (name, params, noise, offline) in ROWS.items():
        cfg = SimConfig(budget=budget, angle_noise=noise, angle_offline=offline)
        s = summarize([run(name, params, seed, cfg) for seed in range(seeds)], cfg)
        out[label] = {k: s[k] for k in ("rollouts_to_target_median", "rollouts_to_target_iqr", "reached",
                                        "final_accuracy_median", "noisy_share_median")}
        print(f"{label:45s} {s['rollouts_to_target_median']:>9,.0f}  reached {s['reached']}/{seeds}  "
              f"final {s['final_accuracy_median']:.3f}  noisy share {s['noisy_share_median']:.3f}", flush=True)
    base = out["uniform"]["rollouts_to_target_median"]
    for v in out.values():
        v["speedup_vs_uniform"] = base / v["rollouts_to_target_median"]
    return out


def mu_trace(offline: bool, steps=(10, 20, 40, 80, 160)) -> dict:
    """Where the center stands after so many steps (seed 0, synthetic angle noise 0.05)."""
    from curriculum.items import ItemPool
    from curriculum.registry import make_strategy
    from curriculum.simulator import SimulatedStudent, _step

    cfg = SimConfig(angle_noise=0.05, angle_offline=offline)
    student = SimulatedStudent(cfg, 0)
    s = make_strategy("gain", ItemPool(student.items()), {}, seed=0, group_size=cfg.group_size)
    rng, out = np.random.default_rng(2), {}
    for v in range(1, max(steps) + 1):
        for sel, r in _step(s, student, cfg, cfg.batch, v, rng):
            student.learn(sel.indices, r)
        if v in steps:
            out[v] = {"mu": round(s.mu, 3), "accuracy": round(student.accuracy()[0], 3)}
    print("offline" if offline else "online", out, flush=True)
    return out


def median_us(fn, reps: int, per: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) / per * 1e6


def hf_cost(reps: int, prompts: int = 64) -> dict:
    import torch

    from workers.backends.angles import PrefillCapture, prompt_features
    from workers.backends.hf import HFBackend
    from workers.model import build_tiny_model

    torch.set_num_threads(1)  # a shared 2-core machine: two threads contend and the medians swing 10x
    torch.manual_seed(0)
    model, tok = build_tiny_model()
    rng = np.random.default_rng(0)
    texts = [f"{a}+{b}=" for a, b in rng.integers(0, 1000, (prompts, 2)).tolist()]
    on = HFBackend("", model=model, tokenizer=tok, device="cpu")
    off = HFBackend("", model=model, tokenizer=tok, device="cpu", features=())
    enc = tok([tok.bos_token + p for p in texts], return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        median_us(lambda: model(**enc), 3, prompts)  # warm-up
        prefill = median_us(lambda: model(**enc), reps, prompts)
        with PrefillCapture(on._mlp) as cap:
            model(**enc)
        feats = median_us(lambda: prompt_features(cap.states, enc["attention_mask"], 1), reps, prompts)
        angle_only = median_us(lambda: prompt_features(cap.states, enc["attention_mask"], 1, ("angle",)), reps,
                               prompts)
    on.generate(texts[:16], 8, max_tokens=8, seed=0)  # warm-up
    t_on, t_off = [], []
    for _ in range(max(5, reps // 4)):  # interleaved, so that the machine's load drifts into both alike
        for be, ts in ((on, t_on), (off, t_off)):
            t = time.perf_counter()
            be.generate(texts[:16], 8, max_tokens=8, seed=0)
            ts.append(time.perf_counter() - t)
    gen_on, gen_off = (float(np.median(ts)) / 16 * 1e6 for ts in (t_on, t_off))
    out = {"prompts": prompts, "prompt_tokens_max": int(enc["input_ids"].shape[1]), "threads": torch.get_num_threads(),
           "prefill_us_per_prompt": prefill, "features_us_per_prompt": feats, "angle_only_us_per_prompt": angle_only,
           "generate_16x8_8tok_features_on_us_per_prompt": gen_on,
           "generate_16x8_8tok_features_off_us_per_prompt": gen_off}
    print(json.dumps(out, indent=1), flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=30)
    a = ap.parse_args(argv)
    res = {"simulated": simulated(a.seeds, a.budget),
           "mu_trace": {"online": mu_trace(False), "offline": mu_trace(True)}, "hf_feature_cost": hf_cost(a.reps),
           "seeds": a.seeds, "budget": a.budget}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gain.json").write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
