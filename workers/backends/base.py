"""The interface every generation engine implements."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass
class Completion:
    text: str
    token_ids: list[int]  # generated tokens, the stop token included when generation stopped on it
    logprobs: list[float]  # log-probability of each generated token under the sampling policy
    finish_reason: str  # "stop" | "length"
    prompt_ids: list[int] = field(default_factory=list)
    # what the policy says about the prompt (the same dict for every completion of it), e.g. {"angle": 0.41,
    # "embedding": [...]}: workers report it as the result's `features` (backends.angles)
    features: dict = field(default_factory=dict)


class GenerationBackend(ABC):
    version: int = 0
    #: the per-prompt features this backend reports with its completions (none: strategies that read them fall back)
    reports_features: tuple[str, ...] = ()

    @abstractmethod
    def generate(self, prompts: list[str], num_samples: list[int] | int, max_tokens: int, temperature: float = 1.0,
                 seed: int | None = None) -> list[list[Completion]]:
        """num_samples[i] completions of prompts[i] (temperature 0 = greedy)."""

    @abstractmethod
    def update_weights(self, state_dict: dict, version: int) -> None:
        """Load new policy weights in place; later generations use them."""
