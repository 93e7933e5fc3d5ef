"""Opt-in logging of a GRPO run for sample-order estimation (METHODS.md §G2): per optimizer step, the groups the
step trained on (prompt and completion token ids, behaviour logprobs, rewards, hence the advantages and masks),
the parameters theta_t before the step and the AdamW state (m, v, step count) before it; theta_T at the end.

Parameters are stored flat (one fp32 vector in `model.named_parameters()` order, tied weights once): the tiny
model's ~0.7M parameters are 2.7 MB, so a step's record (theta, m, v) is ~8 MB. Only the non-degenerate groups
are logged (grpo_step drops the others before its update), and a step with none is not logged (it does not
move the parameters). `workers.order_estimate` replays a log in other orders.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from workers.grpo import Group, GRPOConfig, grpo_step


def flat_params(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for _, p in model.named_parameters()]).clone()


def set_flat_params(model, flat: torch.Tensor) -> None:
    k = 0
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(flat[k: k + p.numel()].view_as(p))
            k += p.numel()


def adam_state(model, optimizer) -> dict:
    """AdamW's (m, v, step) of `model`'s parameters as flat vectors (zeros and step 0 before the first step)."""
    ms, vs, step = [], [], 0
    for _, p in model.named_parameters():
        st = optimizer.state.get(p, {})
        ms.append(st["exp_avg"].detach().reshape(-1) if st else torch.zeros(p.numel()))
        vs.append(st["exp_avg_sq"].detach().reshape(-1) if st else torch.zeros(p.numel()))
        step = int(st["step"]) if st else step
    return {"m": torch.cat(ms).clone(), "v": torch.cat(vs).clone(), "step": step}


def set_adam_state(model, optimizer, state: dict) -> None:
    """Puts a logged (m, v, step) into `optimizer` (a fresh AdamW over `model`); step 0 leaves it fresh."""
    if state["step"] == 0:
        return
    k = 0
    for _, p in model.named_parameters():
        n = p.numel()
        optimizer.state[p] = {"step": torch.tensor(float(state["step"])),
                              "exp_avg": state["m"][k: k + n].view_as(p).clone(),
                              "exp_avg_sq": state["v"][k: k + n].view_as(p).clone()}
        k += n


def adam_hparams(optimizer) -> dict:
    g = optimizer.param_groups[0]
    if g.get("amsgrad") or g.get("maximize"):
        raise ValueError("order logging supports plain AdamW (no amsgrad, no maximize)")
    return {"lr": float(g["lr"]), "betas": [float(b) for b in g["betas"]], "eps": float(g["eps"]),
            "weight_decay": float(g["weight_decay"])}


class StepLogger:
    """Writes `meta.json`, `step-00000.pt`... and `final.pt` to `folder`. Call `log` before each optimizer step
    (or use `logged_grpo_step`) and `finish` after the last."""

    def __init__(self, folder: str | Path, cfg: GRPOConfig, pad_id: int) -> None:
        self.folder, self.cfg, self.pad_id = Path(folder), cfg, pad_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.steps = 0

    def log(self, model, optimizer, groups: list[Group]) -> None:
        live = [g for g in groups if not g.degenerate]
        if not live:
            return
        if self.steps == 0:
            meta = {"grpo": self.cfg.model_dump(), "pad_id": self.pad_id, "adam": adam_hparams(optimizer),
                    "params": [[n, list(p.shape)] for n, p in model.named_parameters()]}
            (self.folder / "meta.json").write_text(json.dumps(meta, indent=1))
        rec = {"theta": flat_params(model), "adam": adam_state(model, optimizer), "groups": [asdict(g) for g in live]}
        torch.save(rec, self.folder / f"step-{self.steps:05d}.pt")
        self.steps += 1

    def finish(self, model) -> None:
        torch.save({"theta": flat_params(model), "steps": self.steps}, self.folder / "final.pt")


def logged_grpo_step(model, optimizer, groups: list[Group], cfg: GRPOConfig, pad_id: int,
                     logger: StepLogger | None = None, ref_model=None) -> dict:
    """`grpo_step`, recording the step first when a logger is given (single process only: the log holds one
    rank's groups). A KL penalty is refused with a logger: the replays do not model the reference policy."""
    if logger is not None:
        if ref_model is not None and cfg.kl_beta > 0:
            raise ValueError("order logging does not support the KL penalty")
        logger.log(model, optimizer, groups)
    return grpo_step(model, optimizer, groups, cfg, pad_id, ref_model=ref_model)


@dataclass
class RunLog:
    """A logged run read back: per step t, theta_t, AdamW's state before step t and the groups B_t."""

    thetas: list[torch.Tensor]
    adam: list[dict]
    groups: list[list[Group]]
    final: torch.Tensor
    cfg: GRPOConfig
    pad_id: int
    hparams: dict

    @property
    def steps(self) -> int:
        return len(self.groups)


def load_log(folder: str | Path) -> RunLog:
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    final = torch.load(folder / "final.pt")
    recs = [torch.load(folder / f"step-{t:05d}.pt") for t in range(final["steps"])]
    return RunLog(thetas=[r["theta"] for r in recs], adam=[r["adam"] for r in recs],
                  groups=[[Group(**g) for g in r["groups"]] for r in recs], final=final["theta"],
                  cfg=GRPOConfig.model_validate(meta["grpo"]), pad_id=meta["pad_id"], hparams=meta["adam"])
