"""Hyperparameters shared by strategies: the base model, the token-budget schedule and the noise guard's."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TokenBudget(BaseModel):
    """Train-Long-Think-Short token budget: B(t) = max(B_min, B0 * gamma^floor(t / T)).

    t counts curriculum steps (policy versions). The lease carries B(t) as `max_tokens`; workers may apply it
    as a hard cap or, as the paper does, grade the answer with a length-efficiency term (workers.verifiers:
    `length_shaped`)."""

    model_config = ConfigDict(extra="forbid")
    b0: int = Field(256, ge=1, description="initial budget B0 in tokens (256 in the paper)")
    b_min: int = Field(1, ge=1, description="floor B_min in tokens (the paper's max(1, ...))")
    gamma: float = Field(0.7, gt=0, le=1, description="decay factor per period")
    period: int = Field(100, ge=1, description="steps T (policy versions) between decays")

    @model_validator(mode="after")
    def _order(self) -> TokenBudget:
        if self.b_min > self.b0:
            raise ValueError("token_budget.b_min must be <= token_budget.b0")
        return self

    def at(self, t: int) -> int:
        return int(max(self.b_min, self.b0 * self.gamma ** (t // self.period)))


class StrategyParams(BaseModel):
    """Base of every strategy's hyperparameters; unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    token_budget: TokenBudget | None = Field(
        None, description="optional token-budget schedule (Train-Long-Think-Short)"
    )


class NoiseGuardParams(BaseModel):
    """No-progress discount — our addition, in no paper (`enabled: false` gives the paper-faithful rule).

    Strategies that score arms or items by reward variance, |advantage| or p ~ 0.5 are drawn to prompts whose
    rewards are noise (partial-credit scorers on a small model, ambiguous references, flaky verifiers): their
    groups are rarely degenerate, yet training on them teaches nothing. Two kinds of evidence, both per arm over
    its last ~`horizon` groups (exponential forgetting, lambda = 1 - 1/horizon):

    * **Item signal.** If an arm's group means vary no more than sampling alone makes them vary, its prompts
      carry no information about the policy: the dispersion ratio
          phi = Var_w(mean_g) / E_w[s_g^2 / (G_g - 1)]       (observed between-group variance of the means
                                                              over the variance a group mean has by sampling)
      is ~1 under noise (whatever the prompt, a coin), and > 1 when prompts differ in difficulty or the arm's
      pass rate drifts as the policy trains. "Signal" = phi > 1 + z sqrt(2 / N).
    * **Progress.** Each time an item is measured again, d = mean_now - mean_at_its_last_visit;
      t = |sum d| / sqrt(sum d^2) is ~|N(0, 1)| when nothing moves and grows like sqrt(pairs) under learning
      (or forgetting).

    An arm with >= `min_groups` groups, mostly mixed groups (share >= `mixed`: the variance a variance-chaser
    loves), no item signal, and no progress (fewer than `min_pairs` pairs, or t < `z`) is judged "noise": its
    draw probability is capped at `floor` x its uniform share (1 / arms; for candidate draws, `floor` x its
    size share) until the evidence changes. Arms whose groups are mostly degenerate are never judged
    (variance-chasers avoid them already, and an out-of-reach arm must stay eligible). A learnable level that
    has plateaued keeps its item signal (its prompts differ in difficulty), so it is not starved; an arm of
    prompts that are all equally hard and not (yet) improving is indistinguishable from noise and is capped
    until its revisits show progress."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="apply the discount (false: the paper's rule)")
    horizon: int = Field(512, ge=8, description="groups (and revisits) of an arm over which the evidence is kept")
    min_groups: int = Field(32, ge=2, description="groups an arm needs before it can be judged")
    min_pairs: int = Field(32, ge=2, description="revisits that make the progress test count")
    z: float = Field(2.0, ge=0, description="significance (standard errors) of item signal and of progress")
    mixed: float = Field(0.5, ge=0, le=1, description="only arms with at least this share of mixed groups are judged")
    floor: float = Field(
        0.15, gt=0, le=1, description="cap of a judged arm's draw probability, relative to its uniform share"
    )


class GuardedParams(StrategyParams):
    """Hyperparameters of a strategy that chases variance / |advantage| / p ~ 0.5, with its noise guard."""

    noise_guard: NoiseGuardParams = Field(
        default_factory=NoiseGuardParams, description="no-progress discount (see NoiseGuardParams)"
    )


class ItemLevelParams(GuardedParams):
    """Hyperparameters of an item-level strategy: it picks n of `candidates` x n random candidates. The candidate
    count has this one name in every strategy (pcl also accepts its old name `k`)."""

    candidates: int = Field(8, ge=1, description="random candidates scored per selected item")
