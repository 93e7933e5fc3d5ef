"""`hf` backend: transformers `generate` on CPU or GPU, with per-token log-probabilities of the samples."""
from __future__ import annotations

import torch

from workers.backends.base import Completion, GenerationBackend


class HFBackend(GenerationBackend):
    def __init__(self, model_path: str, device: str | None = None, max_batch: int = 1024, model=None,
                 tokenizer=None) -> None:
        from workers.model import load_policy

        if model is None:
            model, tokenizer = load_policy(model_path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tok = model.to(self.device).eval(), tokenizer
        self.max_batch = max_batch
        self.version = 0

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
        gen = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=not greedy,
                                  temperature=None if greedy else temperature, top_k=0 if not greedy else None,
                                  top_p=1.0 if not greedy else None, return_dict_in_generate=True,
                                  output_logits=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
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
                                  prompt_ids=enc["input_ids"][b][pmask].tolist()))
        return out

    def update_weights(self, state_dict, version):
        self.model.load_state_dict(state_dict)
        self.version = version
