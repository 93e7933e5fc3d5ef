"""The `hf` backend's per-prompt features (GAIN-RL's angle concentration, the prompt embedding), read from the
prefill of `generate`, against a direct computation from `model(..., output_hidden_states=True)` on the real tiny
transformers model (built locally: no download)."""
import math

import numpy as np
import pytest
import torch

from workers.backends.angles import angle_concentration
from workers.backends.hf import HFBackend
from workers.model import TinyModelConfig, build_tiny_model

PROMPTS = ["12+47=", "3+4=", "100+250=", "7*8="]  # different lengths: the batch is left-padded


@pytest.fixture(scope="module")
def backend():
    model, tok = build_tiny_model(TinyModelConfig(seed=1))
    return HFBackend("", model=model, tokenizer=tok, device="cpu")


def mlp_input_by_hand(model, ids: torch.Tensor) -> torch.Tensor:
    """The last layer's MLP input for one unpadded prompt: from the hidden state entering the last layer
    (output_hidden_states), through that layer's attention by hand. Checked against the model's own output."""
    out = model(ids, output_hidden_states=True)
    h_in = out.hidden_states[-2]
    base, layer = model.model, model.model.layers[-1]
    pos = torch.arange(ids.shape[1])[None]
    attn = layer.self_attn(hidden_states=layer.input_layernorm(h_in),
                           position_embeddings=base.rotary_emb(h_in, pos), attention_mask=None)[0]
    mid = h_in + attn
    u = layer.post_attention_layernorm(mid)
    # the manual forward is the model's: finishing the layer gives its last hidden state
    torch.testing.assert_close(base.norm(mid + layer.mlp(u)), out.hidden_states[-1], atol=1e-5, rtol=1e-5)
    return u[0]


def angle_by_hand(h: np.ndarray, diagonal: bool = True) -> float:
    """sum of cos(h_i, h_j) over j <= i + 1 (the code's tril(+1) mask), over the number of such pairs."""
    n = h / np.linalg.norm(h, axis=1, keepdims=True)
    total = count = 0
    for i in range(len(h)):
        for j in range(len(h)):
            if j <= i + 1 and (diagonal or i != j):
                total += float(n[i] @ n[j])
                count += 1
    return total / count


@torch.no_grad()
@pytest.mark.parametrize("diagonal", [True, False])
def test_hf_features_equal_a_direct_computation_from_hidden_states(backend, diagonal):
    backend.angle_diagonal = diagonal
    try:
        groups = backend.generate(PROMPTS, [2, 1, 3, 2], max_tokens=4, temperature=1.0, seed=0)
    finally:
        backend.angle_diagonal = True
    assert backend.reports_features == ("angle", "embedding")
    tok = backend.tok
    for prompt, comps in zip(PROMPTS, groups):
        ids = tok(tok.bos_token + prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        u = mlp_input_by_hand(backend.model, ids)[1:].numpy()  # the BOS is left out
        f = comps[0].features
        assert all(c.features == f for c in comps)  # one dict per prompt, shared by its samples
        assert f["angle"] == pytest.approx(angle_by_hand(u, diagonal), abs=1e-5)
        assert np.allclose(f["embedding"], u.mean(axis=0), atol=1e-5)
        assert len(f["embedding"]) == backend.model.config.hidden_size


def test_the_angles_differ_between_prompts_and_no_features_when_off(backend):
    got = backend.generate(PROMPTS, 1, max_tokens=2, seed=0)
    angles = [g[0].features["angle"] for g in got]
    assert len(set(angles)) == len(PROMPTS) and all(0 < a <= 1 for a in angles)
    off = HFBackend("", model=backend.model, tokenizer=backend.tok, device="cpu", features=())
    assert off.reports_features == () and all(g[0].features == {} for g in off.generate(PROMPTS, 1, max_tokens=2))


def test_vllm_says_it_reports_no_features():
    from workers.backends.vllm import VLLMBackend  # the module imports vllm lazily: no engine is started here

    assert VLLMBackend.reports_features == ()


def test_angle_on_synthetic_vectors():
    L, d = 5, 8
    real = torch.ones(1, L, dtype=torch.bool)
    same = torch.ones(1, L, d)
    assert angle_concentration(same, real).item() == pytest.approx(1.0)
    ortho = torch.eye(d)[:L][None]  # only the diagonal's 1's count: L of L(L+1)/2 + (L-1) masked pairs
    assert angle_concentration(ortho, real).item() == pytest.approx(L / (L * (L + 1) / 2 + L - 1))
    assert angle_concentration(ortho, real, diagonal=False).item() == pytest.approx(0.0)
    one = torch.zeros(1, L, dtype=torch.bool)
    one[0, -1] = True
    assert angle_concentration(ortho, one).item() == 1.0
    assert math.isnan(angle_concentration(ortho, one, diagonal=False).item())  # no pair left: no angle
