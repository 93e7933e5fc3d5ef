"""A real TRL GRPOTrainer (CPU, tiny random Llama, char tokenizer) on prompts leased from the curriculum service.

Imported by tests/workers/test_adapter_trl.py; also run as a script under `torchrun` for the 2-rank test:
    torchrun --nproc_per_node 2 tests/workers/trl_run.py URL EXPERIMENT RUN_ID STEPS OUT_DIR
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

GROUP = 4  # num_generations == the experiment's group_size
ROWS = 8   # per-device rows per step: 2 groups per rank per step


def items(n: int = 48) -> list[dict]:
    return [{"id": f"q{i}", "prompt": f"{i % 10}+{i // 10}=", "answer": str(i % 10 + i // 10),
             "category": f"d{i % 3}"} for i in range(n)]


def parity_reward(completions, **_):
    """A deterministic score with a ~50/50 mix on a random model, so groups are not all equal and GRPO has a
    gradient (a correctness reward would be all 0 for an untrained model)."""
    return [float(sum(map(ord, c)) % 2) for c in completions]


def trainer(url: str, experiment: str, run_id: str, steps: int, out: Path, seen: list | None = None, **cfg):
    import torch
    from trl import GRPOConfig

    from services.client import CurriculumClient
    from workers.adapters.trl import CurriculumGRPOTrainer
    from workers.model import TinyModelConfig, build_tiny_model

    torch.manual_seed(0)
    model, tok = build_tiny_model(TinyModelConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                  num_attention_heads=2, max_position_embeddings=64))

    def reward(prompts, completions, trainer_state, **cols):
        if seen is not None:  # what the policy was trained on at each step
            seen.append((trainer_state.global_step, list(prompts), list(cols["item_id"])))
        return parity_reward(completions)

    args = GRPOConfig(output_dir=str(out), per_device_train_batch_size=ROWS, num_generations=GROUP,
                      max_completion_length=6, max_steps=steps, learning_rate=1e-3, use_cpu=True, bf16=False,
                      report_to=[], logging_steps=1, save_strategy=cfg.pop("save_strategy", "no"),
                      dataloader_num_workers=0, seed=0, **cfg)
    return CurriculumGRPOTrainer(model=model, processing_class=tok, reward_funcs=[reward], args=args,
                                 curriculum=CurriculumClient(url), experiment=experiment, run_id=run_id)


if __name__ == "__main__":
    url, experiment, run_id, steps, out = sys.argv[1:6]
    t = trainer(url, experiment, run_id, int(steps), Path(out))
    t.train()
    rank = t.accelerator.process_index
    Path(out, f"rank{rank}.json").write_text(json.dumps({
        "leased": {s: [it["id"] for it in b["items"]] for s, b in t.leased.items()},
        "batch_ids": {s: b["batch_id"] for s, b in t.leased.items()},
        "reported": t.curriculum_reward.reported, "world": t.accelerator.num_processes}))
