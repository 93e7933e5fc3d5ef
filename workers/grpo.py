"""GRPO loss and optimizer steps as plain torch functions (Shao et al. 2024, DeepSeekMath; DAPO's token-level
mean and dynamic sampling).

For a group of G completions o_i of prompt q with rewards r_i:

    A_i     = (r_i - mean(r)) / (std(r) + eps)                       (population std, as the controller)
    rho_i,t = exp(log pi(o_i,t | q, o_i,<t) - log pi_old(o_i,t | ...))   (pi_old = the sampler's logprobs)
    log pi  = log_softmax(logits / T)                                (T = the group's sampling temperature)
    L       = - sum_{i,t} min(rho A_i, clip(rho, 1 - eps_lo, 1 + eps_hi) A_i) / sum_i |o_i|
              + beta * KL_k3(pi || pi_ref)                            (optional; k3 = e^d - d - 1, d = ref - new)

Degenerate groups (all rewards equal) have A = 0 and give no gradient: they are dropped before the step and
counted. Token-level normalisation (DAPO) keeps long completions from being under-weighted.

The sampler records log_softmax(logits / T) of the tokens it drew, so the trainer evaluates the policy at the same
T (each group carries its own); at T != 1 the raw softmax would bias every ratio. With several ranks, every
rank runs exactly one forward-backward and one gradient all-reduce per step, whatever its number of usable
groups (a rank with none contributes zero gradient): collective calls must match across ranks or they hang.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from pydantic import BaseModel, ConfigDict, Field

ADV_EPS = 1e-6


class GRPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = Field(3e-4, gt=0, description="AdamW learning rate")
    clip_low: float = Field(0.2, ge=0, description="eps_lo of the clipped ratio")
    clip_high: float = Field(0.28, ge=0, description="eps_hi of the clipped ratio (DAPO clip-higher)")
    kl_beta: float = Field(0.0, ge=0, description="weight of the KL penalty to the reference model (0 = off)")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping")


@dataclass
class Group:
    """One rollout group as the trainer sees it."""

    prompt_ids: list[int]
    completions: list[list[int]]
    logprobs: list[list[float]]  # sampler's per-token logprobs (pi_old)
    rewards: list[float]
    category: str = "default"
    policy_version: int = 0
    item_id: str = ""
    meta: dict = field(default_factory=dict)
    temperature: float = 1.0  # the sampler's; logprobs are log_softmax(logits / T) (greedy, T = 0, counts as 1)

    @property
    def degenerate(self) -> bool:
        return max(self.rewards) - min(self.rewards) <= 1e-12

    def advantages(self) -> list[float]:
        r = torch.tensor(self.rewards, dtype=torch.float64)
        return ((r - r.mean()) / (r.std(unbiased=False) + ADV_EPS)).tolist()


def _pack(seqs: list[tuple[list[int], list[int]]], pad_id: int):
    """Right-padded input ids, attention mask and a mask of completion positions (targets)."""
    L = max(len(p) + len(c) for p, c in seqs)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), L), dtype=torch.long)
    tgt = torch.zeros((len(seqs), L), dtype=torch.bool)
    for b, (p, c) in enumerate(seqs):
        x = p + c
        ids[b, : len(x)] = torch.tensor(x)
        attn[b, : len(x)] = 1
        tgt[b, len(p): len(x)] = True
    return ids, attn, tgt


def token_logprobs(model, seqs: list[tuple[list[int], list[int]]], pad_id: int,
                   temperature: float | list[float] = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L-1) log_softmax(logits / T) of each next token, and the mask of completion tokens among them. T is one
    temperature or one per sequence; T <= 0 (greedy sampling) means the plain softmax, as the samplers record."""
    dev = next(model.parameters()).device
    ids, attn, tgt = _pack(seqs, pad_id)
    ids, attn, tgt = ids.to(dev), attn.to(dev), tgt.to(dev)
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    t = torch.as_tensor(temperature, dtype=logits.dtype, device=dev).reshape(-1)
    t = torch.where(t > 0, t, torch.ones_like(t))
    lp = torch.log_softmax(logits / t[:, None, None], -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return lp, tgt[:, 1:]


def grpo_loss(model, groups: list[Group], cfg: GRPOConfig, pad_id: int, ref_model=None):
    seqs, old, adv, temps = [], [], [], []
    for g in groups:
        a = g.advantages()
        for c, lp, ai in zip(g.completions, g.logprobs, a):
            if c:
                seqs.append((g.prompt_ids, c))
                old.append(lp)
                adv.append(ai)
                temps.append(g.temperature)
    if not seqs:
        return None, {}
    new_lp, mask = token_logprobs(model, seqs, pad_id, temps)
    old_lp = torch.zeros_like(new_lp)
    for b, (_s, lp) in enumerate(zip(seqs, old)):
        pos = mask[b].nonzero().squeeze(-1)
        old_lp[b, pos] = torch.tensor(lp[: len(pos)], dtype=old_lp.dtype, device=old_lp.device)
    A = torch.tensor(adv, dtype=new_lp.dtype, device=new_lp.device)[:, None]
    ratio = torch.exp((new_lp - old_lp).clamp(-20, 20))
    surr = torch.minimum(ratio * A, ratio.clamp(1 - cfg.clip_low, 1 + cfg.clip_high) * A)
    ntok = mask.sum().clamp(min=1)
    loss = -(surr * mask).sum() / ntok
    kl = torch.zeros((), device=new_lp.device)
    if ref_model is not None and cfg.kl_beta > 0:
        with torch.no_grad():
            ref_lp, _ = token_logprobs(ref_model, seqs, pad_id, temps)
        d = ref_lp - new_lp
        kl = ((torch.exp(d) - d - 1) * mask).sum() / ntok
        loss = loss + cfg.kl_beta * kl
    clipped = ((ratio < 1 - cfg.clip_low) | (ratio > 1 + cfg.clip_high)) & mask
    return loss, {"kl": float(kl.detach()), "clip_frac": float(clipped.sum() / ntok), "tokens": int(ntok),
                  "sequences": len(seqs)}


def _world() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def grpo_step(model, optimizer, groups: list[Group], cfg: GRPOConfig, pad_id: int, ref_model=None) -> dict:
    """One optimizer step on the non-degenerate groups; returns metrics (degenerate groups counted).

    With several ranks (a process group is initialised; `model` may be wrapped in DDP) the gradients are averaged
    by one explicit all-reduce of the flattened gradients, weighted by each rank's share of the step's sequences
    (a second, scalar all-reduce), so the step equals one over the union of the ranks' groups. The forward runs
    on the unwrapped module: DDP's own hooks would all-reduce once per backward, and ranks with different
    numbers of groups (or none) would then disagree on the number of collective calls."""
    import torch.distributed as dist

    net = getattr(model, "module", model)  # DDP keeps the replica in .module; its hooks stay idle without its forward
    live = [g for g in groups if not g.degenerate]
    metrics = {"groups": len(groups), "degenerate": len(groups) - len(live), "loss": 0.0, "tokens": 0}
    world = _world()
    if not live and world == 1:
        return metrics
    net.train()
    optimizer.zero_grad(set_to_none=True)
    params = [p for p in net.parameters() if p.requires_grad]
    loss, m = grpo_loss(net, live, cfg, pad_id, ref_model)
    mine = float(m.get("sequences", 0))
    total = mine
    if world > 1:
        n = torch.tensor([mine], dtype=torch.float64, device=params[0].device)
        dist.all_reduce(n)
        total = float(n.item())
    if loss is None:  # nothing usable here: a zero loss that still reaches every parameter
        loss = sum(p.sum() for p in params) * 0.0
    weight = mine / total if total > 0 else 0.0
    (loss * weight).backward()  # the only backward of the step
    if world > 1:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)  # the sum of the weighted gradients = the gradient of the step's whole batch
        k = 0
        for p in params:
            p.grad = flat[k: k + p.numel()].view_as(p).clone()
            k += p.numel()
    if total > 0:
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
    net.eval()
    if m:
        metrics.update(loss=loss.item(), tokens=m["tokens"], kl=m["kl"], clip_frac=m["clip_frac"])
    return metrics


def sft_step(model, optimizer, tokenizer, prompts: list[str], targets: list[str],
             max_grad_norm: float | None = None) -> float:
    """Supervised warm start: maximise log p(target + eos | bos + prompt)."""
    model.train()
    seqs = [([tokenizer.bos_token_id] + tokenizer(p, add_special_tokens=False)["input_ids"],
             tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
            for p, t in zip(prompts, targets)]
    lp, mask = token_logprobs(model, seqs, tokenizer.pad_token_id)
    loss = -(lp * mask).sum() / mask.sum()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    model.eval()
    return loss.item()
