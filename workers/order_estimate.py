"""What the same logged groups would have done in another order (FUT; Yang et al., arXiv 2505.22042; METHODS §G).

Caveat first: in RL the groups depend on the order (the rollouts came from the logged, evolving policy). These
replays answer "what if the learner had trained on the SAME logged groups in another order", an off-policy
question; the PPO ratio is taken against the logged behaviour logprobs as they are.

* `exact_replay`: re-runs the trainer's update rule (`grpo_step` with a fresh AdamW, or the logged AdamW state
  at step 0) on the logged groups in the new order, from theta_0. Cheap at the tiny model's size: the ground
  truth.
* `linear_replay` (FUT-1): with the run written as theta_{t+1} = theta_t - eta Gamma_t(theta_t, B_t),

      gamma_{t+1} = gamma_t - eta [Gamma_t(theta_t, B_{l_t}) + J Gamma_t(theta_t, B_{l_t}) (gamma_t - theta_t)],

  gamma_0 = theta_0, the Jacobian-vector product by `torch.func.jvp` around the logged theta_t (no T^2 store).
  Two choices of Gamma_t for AdamW (both start from the logged AdamW state of step 0, and both reproduce theta_T
  for the identity order up to float error):
  - moments="frozen" (METHODS §G2's wording): AdamW's whole direction with the moments FROZEN AT THE REFERENCE
    (the logged m_t, v_t, step count before reference step t) taking the clipped gradient of B_{l_t}, plus the
    decoupled weight decay; the JVP goes through the gradient, the clipping and the preconditioner.
  - moments="replayed" (the default): the replay keeps its own AdamW moments along the new order and feeds them
    the linearised gradient g(theta_t, B_{l_t}) + H(theta_t, B_{l_t}) (gamma_t - theta_t) (a JVP of the
    clipped gradient). The first-order Taylor term is then the only approximation.
  Why the default: on a swap of two adjacent batches of the tiny model, the frozen moments left an error ~75% of
  the swap's whole effect, no better than the zeroth-order estimate (the new order's moments hold other
  gradients, and with b1 = 0.9 that difference outweighs the curvature term), while replayed moments cut the
  error 2-30x below the zeroth-order one (tests/workers/test_order_estimate.py checks the latter).
  The zeroth-order estimate drops the JVP term (the same moment choice): one pass gives both.
  Measured (docs/results.md, benchmarks/order_estimate.py): at the project's GRPO lr 5e-5 both rank orders
  like exact replay (Spearman ~0.94); at lr 2e-4 over 16 steps neither does (the linearisation drifts).
* The evaluation loss is the mean NLL of the reference answers (answer + eos, token-level mean, as the SFT warm
  start's loss) on held-out items: a smooth function of the parameters, unlike a sampled pass rate.
"""
from __future__ import annotations

import torch

from workers.grpo import Group, GRPOConfig, grpo_loss, grpo_step, token_logprobs
from workers.order_log import RunLog, flat_params, set_adam_state, set_flat_params


class _Functional:
    """`model` with its parameters given as one flat vector: grpo_loss calls it like the module itself, so the
    replayed loss is the trainer's, term for term."""

    def __init__(self, model, flat: torch.Tensor) -> None:
        self.model, self.params, k = model, {}, 0
        for name, p in model.named_parameters():
            self.params[name] = flat[k: k + p.numel()].view_as(p)
            k += p.numel()

    def __call__(self, **kw):
        return torch.func.functional_call(self.model, self.params, args=(), kwargs=kw)

    def parameters(self):
        return iter(self.params.values())


def _eager(model):
    # forward-mode AD has no rule for the fused attention kernels; the eager path is the same function
    model.config._attn_implementation = "eager"
    return model


def shared_prefix(order: list[int], skip: bool = True) -> int:
    """Steps at the start of `order` that are the logged ones (0 when not skipping): up to there every replay is
    the logged trajectory itself, so it starts from the logged theta_t and AdamW state instead."""
    n = 0
    while skip and n < len(order) and order[n] == n:
        n += 1
    return n


def exact_replay(model, log: RunLog, order: list[int], skip_prefix: bool = True) -> torch.Tensor:
    """theta_T after training `model` (the logged architecture) from theta_0 on log.groups[order[0]], ... with
    the logged run's update rule. Returns the flat parameters; leaves `model` at them."""
    s = shared_prefix(order, skip_prefix)
    if s == log.steps:
        set_flat_params(model, log.final)
        return log.final.clone()
    set_flat_params(model, log.thetas[s])
    h = log.hparams
    opt = torch.optim.AdamW(model.parameters(), lr=h["lr"], betas=tuple(h["betas"]), eps=h["eps"],
                            weight_decay=h["weight_decay"])
    set_adam_state(model, opt, log.adam[s])
    for b in order[s:]:
        grpo_step(model, opt, log.groups[b], log.cfg, log.pad_id)
    return flat_params(model)


def clipped_gradient(model, groups: list[Group], cfg: GRPOConfig, pad_id: int):
    """theta -> the gradient of B's GRPO loss at theta (flat), clipped to max_grad_norm as clip_grad_norm_ does."""

    def loss(theta):
        out, _ = grpo_loss(_Functional(model, theta), groups, cfg, pad_id)
        return out

    def gradient(theta):
        g = torch.func.grad(loss)(theta)
        return g * torch.clamp(cfg.max_grad_norm / (torch.linalg.vector_norm(g) + 1e-6), max=1.0)

    return gradient


class _AdamW:
    """torch's AdamW step on flat vectors, from a given (m, v, step)."""

    def __init__(self, hparams: dict, state: dict) -> None:
        self.h, self.m, self.v, self.k = hparams, state["m"].clone(), state["v"].clone(), state["step"]

    def direction(self, theta, g, m, v, k):
        """Gamma = (theta_t - theta_{t+1}) / lr after the moments took g; (direction, m, v)."""
        b1, b2 = self.h["betas"]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        # + 1e-30: v = 0 exactly (a token never seen) would give sqrt'(0) = inf and 0 * inf = nan in the JVP
        denom = torch.sqrt(v + 1e-30) / (1 - b2**k) ** 0.5 + self.h["eps"]
        return self.h["weight_decay"] * theta + (m / (1 - b1**k)) / denom, m, v

    def step(self, theta, g):
        """The replayed-moments update: the moments are this replay's own."""
        self.k += 1
        d, self.m, self.v = self.direction(theta, g, self.m, self.v, self.k)
        return theta - self.h["lr"] * d


def linear_replay(model, log: RunLog, order: list[int], moments: str = "replayed",
                  skip_prefix: bool = True) -> dict[str, torch.Tensor]:
    """FUT-1 and zeroth-order estimates of theta_T for `order` (flat vectors {"fut1", "zeroth"}).

    moments="frozen" (FUT-1 as METHODS §G2 states it): Gamma_t = AdamW's direction with the reference's moments
    before step t, taking the gradient of B_{l_t}; the JVP is taken through the whole direction.
    moments="replayed": the replay runs its own AdamW moments along the new order, fed with the linearised
    gradient g(theta_t, B) + H(theta_t, B) (gamma_t - theta_t) (the JVP of the clipped gradient); the only
    approximation left is that first-order Taylor term."""
    if moments not in ("frozen", "replayed"):
        raise ValueError(f"moments must be 'frozen' or 'replayed', not {moments!r}")
    _eager(model)
    lr, s = log.hparams["lr"], shared_prefix(order, skip_prefix)
    if s == log.steps:
        return {"fut1": log.final.clone(), "zeroth": log.final.clone()}
    gamma, zeroth = log.thetas[s].clone(), log.thetas[s].clone()
    opt1, opt0 = _AdamW(log.hparams, log.adam[s]), _AdamW(log.hparams, log.adam[s])
    for t, b in enumerate(order[s:], start=s):
        theta, ref = log.thetas[t], log.adam[t]
        grad = clipped_gradient(model, [g for g in log.groups[b] if not g.degenerate], log.cfg, log.pad_id)
        if moments == "frozen":
            def f(x, grad=grad, ref=ref):
                return opt1.direction(x, grad(x), ref["m"], ref["v"], ref["step"] + 1)[0]

            d, jd = torch.func.jvp(f, (theta,), (gamma - theta,))
            gamma = gamma - lr * (d + jd).detach()
            zeroth = zeroth - lr * d.detach()
        else:
            g, hg = torch.func.jvp(grad, (theta,), (gamma - theta,))
            gamma = opt1.step(gamma, (g + hg).detach())
            zeroth = opt0.step(zeroth, g.detach())
    return {"fut1": gamma, "zeroth": zeroth}


def eval_nll(model, tok, items: list[dict], theta: torch.Tensor | None = None) -> float:
    """Mean NLL per token of answer + eos given bos + prompt over `items` ({prompt, answer}); at `theta` (flat)
    when given (the model is left there)."""
    if theta is not None:
        set_flat_params(model, theta)
    seqs = [([tok.bos_token_id] + tok(it["prompt"], add_special_tokens=False)["input_ids"],
             tok(str(it["answer"]), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]) for it in items]
    with torch.no_grad():
        lp, mask = token_logprobs(model.eval(), seqs, tok.pad_token_id)
    return float(-(lp * mask).sum() / mask.sum())


def kendall_distance(order: list[int]) -> float:
    """Normalised Kendall-tau distance of `order` from the identity: discordant pairs / all pairs (0 = same, 1 =
    reversed)."""
    n = len(order)
    bad = sum(order[i] > order[j] for i in range(n) for j in range(i + 1, n))
    return bad / max(n * (n - 1) / 2, 1)


def spearman(a, b) -> float:
    """Spearman rank correlation (Pearson on ranks; ties broken by position, rare with float losses)."""
    ra = torch.as_tensor(a, dtype=torch.float64).argsort().argsort().double()
    rb = torch.as_tensor(b, dtype=torch.float64).argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / ((ra.norm() * rb.norm()) + 1e-300))
