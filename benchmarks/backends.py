"""Generation backends on the tiny model: tokens/s of `hf` and `vllm` for 64 prompts x 8 samples, vLLM's engine
start, and the in-place weight update (with the prefix-cache reset). Needs the vLLM venv:

    bash scripts/venv.sh vllm && .venv-vllm/bin/python benchmarks/backends.py [--repeats 3]

Without vLLM installed it measures `hf` alone. Medians over repeats; table + benchmarks/results/backends.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from workers.backends.hf import HFBackend
from workers.model import TinyModelConfig, build_tiny_model, save_policy

RESULTS = Path(__file__).parent / "results"
PROMPTS = [f"{a}+{b}=" for a, b in zip(range(10, 74), range(30, 94))]


def throughput(backend, repeats: int, max_tokens: int) -> dict:
    backend.generate(PROMPTS[:4], 2, max_tokens, seed=0)  # warm-up
    rates, secs = [], []
    for k in range(repeats):
        t = time.perf_counter()
        outs = backend.generate(PROMPTS, 8, max_tokens, temperature=1.0, seed=k)
        dt = time.perf_counter() - t
        secs.append(dt)
        rates.append(sum(len(c.token_ids) for g in outs for c in g) / dt)
    return {"tokens_per_s": statistics.median(rates), "seconds": statistics.median(secs)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=48)
    args = p.parse_args(argv)
    model, tok = build_tiny_model(TinyModelConfig())
    path = save_policy(model, tok, Path(tempfile.mkdtemp(prefix="bench-backends-")) / "policy")
    result = {"prompts": len(PROMPTS), "samples": 8, "max_tokens": args.max_tokens,
              "hf": throughput(HFBackend(str(path), device="cpu"), args.repeats, args.max_tokens)}
    try:
        from workers.backends.vllm import VLLMBackend

        t = time.perf_counter()
        be = VLLMBackend(str(path))
        result["vllm"] = {"engine_start_s": time.perf_counter() - t,
                          **throughput(be, args.repeats, args.max_tokens)}
        other, _ = build_tiny_model(TinyModelConfig(seed=1))
        ups = []
        for v in range(1, args.repeats + 1):
            t = time.perf_counter()
            be.update_weights(other.state_dict() if v % 2 else model.state_dict(), v)
            ups.append(time.perf_counter() - t)
        result["vllm"]["update_weights_s"] = statistics.median(ups)
    except ImportError:
        result["vllm"] = None
    print(f"tiny model, {len(PROMPTS)} prompts x 8 samples, max_tokens {args.max_tokens} (medians of {args.repeats})")
    print("| backend | tokens/s | s per batch | engine start s | weight update s |\n|---|---:|---:|---:|---:|")
    for name in ("hf", "vllm"):
        r = result[name]
        if r:
            print(f"| {name} | {r['tokens_per_s']:,.0f} | {r['seconds']:.2f} | {r.get('engine_start_s', 0):.1f} | "
                  f"{r.get('update_weights_s', 0):.3f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backends.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
