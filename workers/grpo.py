"""GRPO loss and optimizer steps as plain torch functions (Shao et al. 2024, DeepSeekMath; DAPO's token-level
mean and dynamic sampling).

For a group of G completions o_i of prompt q with rewards r_i:

    A_i     = (r_i - mean(r)) / (std(r) + eps)                       (population std, as the controller)
    rho_i,t = exp(log pi(o_i,t | q, o_i,<t) - log pi_old(o_i,t | ...))   (pi_old = the sampler's logprobs)
    L       = - sum_{i,t} min(rho A_i, clip(rho, 1 - eps_lo, 1 + eps_hi) A_i) / sum_i |o_i|
              + beta * KL_k3(pi || pi_ref)                            (optional; k3 = e^d - d - 1, d = ref - new)

Degenerate groups (all rewards equal) have A = 0 and give no gradient: they are dropped before the step and
counted. Token-level normalisation (DAPO) keeps long completions from being under-weighted.
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
    micro_batch: int = Field(256, ge=1, description="sequences per forward pass")


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


def token_logprobs(model, seqs: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L-1) log pi of each next token, and the mask of completion tokens among them."""
    dev = next(model.parameters()).device
    ids, attn, tgt = _pack(seqs, pad_id)
    ids, attn, tgt = ids.to(dev), attn.to(dev), tgt.to(dev)
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return lp, tgt[:, 1:]


def grpo_loss(model, groups: list[Group], cfg: GRPOConfig, pad_id: int, ref_model=None):
    seqs, old, adv = [], [], []
    for g in groups:
        a = g.advantages()
        for c, lp, ai in zip(g.completions, g.logprobs, a):
            if c:
                seqs.append((g.prompt_ids, c))
                old.append(lp)
                adv.append(ai)
    if not seqs:
        return None, {}
    new_lp, mask = token_logprobs(model, seqs, pad_id)
    old_lp = torch.zeros_like(new_lp)
    for b, (s, lp) in enumerate(zip(seqs, old)):
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
            ref_lp, _ = token_logprobs(ref_model, seqs, pad_id)
        d = ref_lp - new_lp
        kl = ((torch.exp(d) - d - 1) * mask).sum() / ntok
        loss = loss + cfg.kl_beta * kl
    clipped = ((ratio < 1 - cfg.clip_low) | (ratio > 1 + cfg.clip_high)) & mask
    return loss, {"kl": float(kl), "clip_frac": float(clipped.sum() / ntok), "tokens": int(ntok),
                  "sequences": len(seqs)}


def grpo_step(model, optimizer, groups: list[Group], cfg: GRPOConfig, pad_id: int, ref_model=None) -> dict:
    """One optimizer step on the non-degenerate groups; returns metrics (degenerate groups counted)."""
    live = [g for g in groups if not g.degenerate]
    metrics = {"groups": len(groups), "degenerate": len(groups) - len(live), "loss": 0.0, "tokens": 0}
    if not live:
        return metrics
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total_seq = sum(len(g.completions) for g in live)
    # micro-batches by groups; each loss is scaled by its share of sequences
    chunk, start, agg = [], 0, {"kl": 0.0, "clip_frac": 0.0}
    batches, cur, n = [], [], 0
    for g in live:
        cur.append(g)
        n += len(g.completions)
        if n >= cfg.micro_batch:
            batches.append(cur)
            cur, n = [], 0
    if cur:
        batches.append(cur)
    for mb in batches:
        loss, m = grpo_loss(model, mb, cfg, pad_id, ref_model)
        if loss is None:
            continue
        w = m["sequences"] / total_seq
        (loss * w).backward()
        metrics["loss"] += loss.item() * w
        metrics["tokens"] += m["tokens"]
        agg["kl"] += m["kl"] * w
        agg["clip_frac"] += m["clip_frac"] * w
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    optimizer.step()
    model.eval()
    return {**metrics, **agg}


def sft_step(model, optimizer, tokenizer, prompts: list[str], targets: list[str]) -> float:
    """Supervised warm start: maximise log p(target + eos | bos + prompt)."""
    model.train()
    seqs = [([tokenizer.bos_token_id] + tokenizer(p, add_special_tokens=False)["input_ids"],
             tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
            for p, t in zip(prompts, targets)]
    lp, mask = token_logprobs(model, seqs, tokenizer.pad_token_id)
    loss = -(lp * mask).sum() / mask.sum()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    model.eval()
    return loss.item()
