"""The policy's own signal about a prompt, read during the prefill that generation runs anyway (GAIN-RL, Wang et
al., arXiv 2506.02281; ../shared/METHODS.md §A).

The token states are the input of the last decoder layer's MLP (its `up_proj`), i.e. the output of that layer's
`post_attention_layernorm`, as in the authors' code. For one prompt with states h_1..h_L and C_ij = cos(h_i, h_j):

    M     = tril(ones(L, L), +1)          lower triangle, diagonal and one super-diagonal (the code's mask)
    angle = sum(C * M) / sum(M)           a mean cosine; `diagonal=False` drops the diagonal's 1's

The mask only compares positions with each other, so left padding does not move it: the band is the same on the
padded row. The backend's BOS (the same token for every prompt) is left out, the way the paper's slice leaves out
the fixed template prefix. `embedding` is the mean of the same states (the policy's embedding of the prompt).
"""
from __future__ import annotations

import torch

from curriculum.events import MAX_FEATURE_DIM

FEATURES = ("angle", "embedding")


def last_mlp(model) -> torch.nn.Module | None:
    """The last decoder layer's MLP of a Llama/Qwen/Mistral-style causal LM, or None when it has no such layout."""
    base = getattr(model, "model", None)
    layers = getattr(base, "layers", None)
    if layers is None or not len(layers):
        return None
    return getattr(layers[-1], "mlp", None)


class PrefillCapture:
    """Keeps the input of `module` on its first call inside the `with` block: during `generate` that is the
    prefill (every prompt position at once); the decoding calls after it see one position each and are ignored."""

    def __init__(self, module: torch.nn.Module | None) -> None:
        self.module, self.states, self._handle = module, None, None

    def _hook(self, _module, args) -> None:
        if self.states is None:
            self.states = args[0].detach()

    def __enter__(self) -> PrefillCapture:
        if self.module is not None:
            self._handle = self.module.register_forward_pre_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()


def angle_concentration(states: torch.Tensor, real: torch.Tensor, diagonal: bool = True) -> torch.Tensor:
    """(B,) angle of each row of `states` (B, L, d) over its positions marked in `real` (B, L) (nan: none)."""
    h = torch.nn.functional.normalize(states.float(), dim=-1)
    cos = h @ h.transpose(1, 2)
    L = states.shape[1]
    band = torch.tril(torch.ones(L, L, dtype=torch.bool, device=states.device), diagonal=1)
    if not diagonal:
        band &= ~torch.eye(L, dtype=torch.bool, device=states.device)
    m = band[None] & real[:, :, None] & real[:, None, :]
    return (cos * m).sum(dim=(1, 2)) / m.sum(dim=(1, 2))  # 0/0 = nan where a row has no pair


def prompt_features(states: torch.Tensor, attention_mask: torch.Tensor, skip: int = 0,
                    which: tuple[str, ...] = FEATURES, diagonal: bool = True) -> list[dict]:
    """Per row: {"angle": float, "embedding": [floats]} over the row's real tokens after its first `skip`."""
    real = attention_mask.bool()
    if skip:
        real &= real.long().cumsum(dim=1) > skip
    out: list[dict] = [{} for _ in range(len(states))]
    if "angle" in which:
        for d, a in zip(out, angle_concentration(states, real, diagonal).tolist()):
            if a == a:  # not nan
                d["angle"] = a
    if "embedding" in which and states.shape[-1] <= MAX_FEATURE_DIM:
        n = real.sum(dim=1, keepdim=True)
        mean = (states.float() * real[:, :, None]).sum(dim=1) / n.clamp(min=1)
        for d, e, k in zip(out, mean.tolist(), n[:, 0].tolist()):
            if k:
                d["embedding"] = e
    return out
