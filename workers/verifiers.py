"""Verifiers: completion -> reward in [0, 1], chosen by the item's `metadata["verifier"]`.

* "exact": normalised exact match of the extracted answer;
* "digits": partial credit, the share of right-aligned matching characters (the arithmetic family's default);
* "math": `math-verify` parse + verify, for free-form math (1/2 == 0.5 == \\frac{1}{2});
* "reasoning_gym": the dataset's own `score_answer`, on the entry re-created from the item's metadata;
* "coin": noise, 1 or 0 with probability 1/2 whatever the completion (the arithmetic family's "noise" category);
* "lenient": a lenient judge, exact match OR any number that ends in the answer's last digit (the arithmetic
  family's `judge` noise: a grader a policy can learn to game);
* plug-ins: `register("name", fn)` or a dotted path "package.module:function" as the verifier name.

A verifier that throws scores 0 and is counted (`Verifier.errors`); it never crashes the rollout worker.

`length_shaped` grades length against the lease's token budget (Train-Long-Think-Short) instead of cutting
the completion at it; the rollout worker applies it when `RolloutConfig.length_weight` > 0.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

ScoreFn = Callable[[Mapping[str, Any], str], float]
_ANSWER_LINE = re.compile(r"answer\s*[:：]\s*(.+)", re.IGNORECASE)
_REGISTRY: dict[str, ScoreFn] = {}


def register(name: str, fn: ScoreFn) -> ScoreFn:
    _REGISTRY[name] = fn
    return fn


def length_shaped(score: float, n_tokens: int, budget: int | None, weight: float = 0.5) -> float:
    """Correctness with a length-efficiency term (Train-Long-Think-Short, Hammoud et al. 2025):

        r = score * ((1 - w) + w * l(n, B)),   l = 1 for n <= B,  1 - (n - B) / B for B < n < 2B,  0 beyond

    B is the lease's budget B(t) = max(B_min, B0 gamma^floor(t/T)) (B0 = 256 in the paper). The paper combines
    correctness, a length-efficiency term and a format term; its exact weights were not available to us
    offline, so this is our reading of it: the length share is earned only by a correct answer (a short wrong
    answer gets nothing), and an answer over budget is graded — it loses the length share gradually — rather
    than zeroed by a hard cut. No budget (None) leaves the score as it is."""
    if budget is None or budget <= 0:
        return score
    ell = 1.0 if n_tokens <= budget else max(0.0, 1.0 - (n_tokens - budget) / budget)
    return score * ((1.0 - weight) + weight * ell)


def extract_answer(text: str) -> str:
    """The last "Answer: ..." line when there is one, else the first line of the completion."""
    found = _ANSWER_LINE.findall(text)
    if found:
        return found[-1].strip()
    return text.strip().split("\n", 1)[0].strip() if text.strip() else ""


def _norm(s: str) -> str:
    s = s.strip().strip(".").replace(",", "").replace(" ", "")
    return s.lower()


def exact(item: Mapping[str, Any], completion: str) -> float:
    return float(item.get("answer") is not None and _norm(extract_answer(completion)) == _norm(str(item["answer"])))


def digits(item: Mapping[str, Any], completion: str) -> float:
    """Partial credit for numbers: the share of right-aligned characters that match (1.0 = exact). The units
    digit of a sum needs only single-digit skill, so harder levels give a learning signal before any exact
    answer appears."""
    gold, pred = _norm(str(item.get("answer", ""))), _norm(extract_answer(completion))
    if not gold or not pred:
        return 0.0
    same = sum(a == b for a, b in zip(reversed(gold), reversed(pred)))
    return same / max(len(gold), len(pred))


def coin(item: Mapping[str, Any], completion: str) -> float:
    """A grader that flips a coin: it stands for a flaky verifier or an ambiguous question. Deterministic given the
    item, the completion and the `sample_key` the rollout worker adds (rollout id and sample index), so the same
    rollout always scores the same, while two samples of a group are independent even when their texts agree."""
    key = f"{item.get('id', '')}|{item.get('sample_key', '')}|{completion}".encode()
    return float(hashlib.blake2b(key, digest_size=1).digest()[0] & 1)


def lenient(item: Mapping[str, Any], completion: str) -> float:
    """A judge that looks at one superficial feature: a number ending in the reference's last digit passes, right or
    wrong ("59" accepts "49" and "1239"). It stands for a lenient LLM judge or a loose regex: its reward is learnable,
    but what it teaches is the feature, not the task."""
    if exact(item, completion):
        return 1.0
    gold, pred = _norm(str(item.get("answer", ""))), _norm(extract_answer(completion))
    return float(bool(re.fullmatch(r"-?\d+", pred)) and bool(gold) and pred[-1] == gold[-1])


def math(item: Mapping[str, Any], completion: str) -> float:
    from math_verify import parse, verify

    gold = parse(str(item["answer"]))
    pred = parse(extract_answer(completion))
    return float(bool(gold) and bool(pred) and verify(gold, pred))


@lru_cache(maxsize=64)
def _rg_dataset(name: str, config_json: str, seed: int, size: int):
    import reasoning_gym

    return reasoning_gym.create_dataset(name, size=size, seed=seed, **json.loads(config_json))


def reasoning_gym(item: Mapping[str, Any], completion: str) -> float:
    m = item["metadata"]
    ds = _rg_dataset(m["dataset"], json.dumps(m.get("config", {}), sort_keys=True), int(m["seed"]), int(m["size"]))
    entry = ds[int(m["index"])]
    return float(ds.score_answer(answer=extract_answer(completion), entry=entry))


register("exact", exact)
register("digits", digits)
register("coin", coin)
register("lenient", lenient)
register("math", math)
register("reasoning_gym", reasoning_gym)


def resolve(name: str) -> ScoreFn:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:  # plug-in by import path
        mod, fn = name.split(":", 1)
        return register(name, getattr(importlib.import_module(mod), fn))
    raise KeyError(f"unknown verifier {name!r}; known: {sorted(_REGISTRY)} or 'package.module:function'")


class Verifier:
    """Scores completions; counts (instead of raising) every verifier failure."""

    def __init__(self, default: str = "exact") -> None:
        self.default = default
        self.errors = 0
        self.last_error: str | None = None

    def score(self, item: Mapping[str, Any], completion: str) -> float:
        name = (item.get("metadata") or {}).get("verifier", self.default)
        try:
            r = float(resolve(name)(item, completion))
            if not 0.0 <= r <= 1.0 or r != r:
                raise ValueError(f"verifier {name!r} returned {r}, outside [0, 1]")
            return r
        except Exception as e:  # a broken verifier must not take the worker down
            self.errors += 1
            self.last_error = f"{name}: {type(e).__name__}: {e}"
            return 0.0
