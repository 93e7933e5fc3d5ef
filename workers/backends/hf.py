"""`hf` backend: transformers `generate` on CPU or GPU, with per-token log-probabilities of the samples, and
the policy's own signal about each prompt (angle concentration, embedding: backends.angles), read from the
prefill that `generate` runs anyway by a hook on the last layer's MLP input."""
from __future__ import annotations

import logging
from contextlib import nullcontext

import torch

from workers.backends.angles import FEATURES, PrefillCapture, last_mlp, prompt_features
from workers.backends.base import Completion, GenerationBackend

log = logging.getLogger(__name__)


class HFBackend(GenerationBackend):
    def __init__(self, model_path: str, device: str | None = None, max_batch: int = 1024, model=None,
                 tokenizer=None, features: tuple[str, ...] = FEATURES, angle_diagonal: bool = True) -> None:
        """`features`: which of backends.angles.FEATURES to report (() for none); `angle_diagonal`: count the
        diagonal's 1's in the angle's mean (the authors' code does)."""
        from workers.model import load_policy

        if model is None:
            model, tokenizer = load_policy(model_path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tok = model.to(self.device).eval(), tokenizer
        self.max_batch = max_batch
        self.version = 0
        self._mlp = last_mlp(self.model) if features else None
        if features and self._mlp is None:
            log.warning("hf backend: %s has no model.layers[-1].mlp; no features are reported",
                        type(self.model).__name__)
        self.reports_features = tuple(f for f in FEATURES if f in features) if self._mlp is not None else ()
        self.angle_diagonal = angle_diagonal

    @torch.no_grad()
    def generate(self, prompts, num_samples, max_tokens, temperature=1.0, seed=None):
        counts = [num_samples] * len(prompts) if isinstance(num_samples, int) else list(num_samples)
        flat = [p for p, n in zip(prompts, counts) for _ in range(n)]
        if seed is not None:
            torch.manual_seed(seed)
        outs: list[Completion] = []
        for s in range(0, len(flat), self.max_batch):
            outs += self._generate(flat[s: s + self.max_batch], max_tokens, temperature)
        grouped, k = [], 0
        for n in counts:
            grouped.append(outs[k: k + n])
            k += n
        return grouped

    def _generate(self, prompts: list[str], max_tokens: int, temperature: float) -> list[Completion]:
        tok = self.tok
        enc = tok([(tok.bos_token or "") + p for p in prompts], return_tensors="pt", padding=True,
                  add_special_tokens=False).to(self.device)
        greedy = temperature <= 0
        with PrefillCapture(self._mlp) if self._mlp is not None else nullcontext() as cap:
            gen = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=not greedy,
                                      temperature=None if greedy else temperature,
                                      top_k=0 if not greedy else None, top_p=1.0 if not greedy else None,
                                      return_dict_in_generate=True, output_logits=True, pad_token_id=tok.pad_token_id,
                                      eos_token_id=tok.eos_token_id)
        feats = self._features(prompts, cap.states if cap is not None else None, enc["attention_mask"])
        seqs = gen.sequences[:, enc["input_ids"].shape[1]:]
        logits = torch.stack(gen.logits, dim=1).float()  # (B, T, V) raw logits
        if not greedy:
            logits = logits / temperature
        lp = torch.log_softmax(logits, dim=-1).gather(-1, seqs[:, : logits.shape[1]].unsqueeze(-1)).squeeze(-1)
        out = []
        eos = tok.eos_token_id
        for b in range(len(prompts)):
            ids = seqs[b].tolist()
            n = ids.index(eos) + 1 if eos in ids else len(ids)
            ids = ids[:n]
            text = tok.decode(ids, skip_special_tokens=True)
            pmask = enc["attention_mask"][b].bool()
            out.append(Completion(text=text, token_ids=ids, logprobs=lp[b, :n].tolist(),
                                  finish_reason="stop" if ids and ids[-1] == eos else "length",
                                  prompt_ids=enc["input_ids"][b][pmask].tolist(), features=feats[b]))
        return out

    def _features(self, prompts: list[str], states, attention_mask) -> list[dict]:
        """Each distinct prompt's features, once (its repeats in the batch share the dict)."""
        if states is None or states.shape[1] != attention_mask.shape[1]:  # no capture, or not a prefill
            return [{} for _ in prompts]
        firsts: dict[str, int] = {}
        for k, p in enumerate(prompts):
            firsts.setdefault(p, k)
        first, rows = list(firsts), list(firsts.values())
        skip = 1 if self.tok.bos_token else 0
        got = prompt_features(states[rows], attention_mask[rows], skip, self.reports_features, self.angle_diagonal)
        by_prompt = dict(zip(first, got))
        return [by_prompt[p] for p in prompts]

    def update_weights(self, state_dict, version):
        self.model.load_state_dict(state_dict)
        self.version = version
