"""The warm start in a child process whose numerics are pinned, so that every machine trains the same policy.

Why a child process: the same config gave another policy on another machine (README d2 0.64 / d3 0.08, a
fresh clone d2 0.36 / d3 0.03). The SFT run is seeded (initialisation, data order, sampling), so what differed
was the arithmetic: MKL picks its matmul kernels by CPU (AVX2 / AVX-512) and splits reductions by thread count,
ATen vectorises by CPU capability, and 1,000 SFT steps at lr 1e-3 amplify the last-bit differences into another
policy. These switches are read once, when the libraries load, so they must be set before torch is imported:

* `MKL_CBWR=COMPATIBLE`: MKL's conditional numerical reproducibility, the same kernels on every x86 CPU;
* `ATEN_CPU_CAPABILITY=default`: ATen's non-vectorised kernels whatever the CPU offers;
* `OMP_NUM_THREADS=MKL_NUM_THREADS=1` and `torch.set_num_threads(1)`: one reduction order;
* `torch.use_deterministic_algorithms(True)`.

    python -m workers.warm_start_job SPEC.json     (SPEC: see `WarmStartJob`; writes policy + pass_rates.json)
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

PINNED_ENV = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "CUDA_VISIBLE_DEVICES": ""}


class WarmStartJob(BaseModel):
    """What the child process needs: the tiny model and SFT config (or a real model to measure as it is), the
    task source, the held-out items and how to sample them, and the output folder."""

    model_config = ConfigDict(extra="forbid")
    model: dict[str, Any]
    warm_start: dict[str, Any]
    source: dict[str, Any]
    model_path: str | None = None
    evals: list[dict]
    max_tokens: int
    samples: int
    temperature: float
    folder: str
    map_file: str = "pass_rates.json"


def map_checksum(pass_rate: dict[str, float]) -> str:
    """sha256 (first 12 hex) of the pass-rate map: equal maps, equal checksums, on any machine."""
    return hashlib.sha256(json.dumps(pass_rate, sort_keys=True).encode()).hexdigest()[:12]


def weights_checksum(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def run_job(job: WarmStartJob) -> dict:
    """Train (or load) and measure, in this process: call through `warm_start_pinned`, not directly."""
    import torch

    from curriculum.sources import parse_source
    from workers.model import TinyModelConfig, build_tiny_model, load_policy, save_policy
    from workers.warm_start import WarmStartConfig, pass_rates, warm_start

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))  # PINNED_ENV: 1
    torch.use_deterministic_algorithms(True)
    t0 = time.time()
    if job.model_path:
        model, tok = load_policy(job.model_path)
    else:
        model, tok = build_tiny_model(TinyModelConfig.model_validate(job.model))
        warm_start(model, tok, parse_source(job.source), WarmStartConfig.model_validate(job.warm_start))
    rate, greedy = pass_rates(model, tok, job.evals, job.max_tokens, job.samples, job.temperature)
    folder = Path(job.folder)
    if not job.model_path:
        save_policy(model, tok, folder)
    warm = {"pass_rate": rate, "greedy": greedy, "seconds": round(time.time() - t0, 1),
            "checksum": map_checksum(rate), "weights_checksum": weights_checksum(model),
            "numerics": {k: os.environ.get(k) for k in PINNED_ENV} | {"torch": torch.__version__}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / job.map_file).write_text(json.dumps(warm, indent=1))
    return warm


def warm_start_pinned(job: WarmStartJob, pinned: bool = True) -> dict:
    """Run the warm start in a child process under PINNED_ENV (pinned=False: under this process's environment,
    to show the difference) and return its pass-rate map."""
    folder = Path(job.folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / f"{Path(job.map_file).stem}.job.json"
    spec.write_text(job.model_dump_json())
    env = {**os.environ, **(PINNED_ENV if pinned else {})}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "workers.warm_start_job", str(spec)], env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"warm start failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads((folder / job.map_file).read_text())


if __name__ == "__main__":
    run_job(WarmStartJob.model_validate_json(Path(sys.argv[1]).read_text()))
