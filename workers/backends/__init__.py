"""Generation backends behind one interface (`GenerationBackend`): `hf` and `vllm` (lazy import)."""
from workers.backends.base import Completion, GenerationBackend


def make_backend(kind: str, model_path: str, **kw) -> GenerationBackend:
    if kind == "hf":
        from workers.backends.hf import HFBackend

        return HFBackend(model_path, **kw)
    if kind == "vllm":
        from workers.backends.vllm import VLLMBackend

        return VLLMBackend(model_path, **kw)
    raise ValueError(f"backend: unknown kind {kind!r}; known: hf, vllm")


__all__ = ["Completion", "GenerationBackend", "make_backend"]
