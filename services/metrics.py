"""Prometheus metrics of the controller (`/metrics`): what this replica answered, and owner-side totals."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()
LATENCY = Histogram("curriculum_request_seconds", "request latency", ["route", "method", "status"],
                    registry=REGISTRY, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10))
EVENTS = Counter("curriculum_events_applied_total", "reward events accepted", ["experiment"], registry=REGISTRY)
DUPLICATES = Counter("curriculum_duplicates_total", "reward events ignored as duplicates", ["experiment"],
                     registry=REGISTRY)
LEASED = Counter("curriculum_items_leased_total", "items handed out", ["experiment"], registry=REGISTRY)
EXPIRED = Gauge("curriculum_leases_expired", "leases that expired unreported", ["experiment"], registry=REGISTRY)
ARM_WEIGHT = Gauge("curriculum_arm_weight", "probability that the next selection draws the arm",
                   ["experiment", "arm"], registry=REGISTRY)
# owner-side totals (exact across replicas; the counters above count what this replica answered)
STATE_EVENTS = Gauge("curriculum_experiment_events", "events applied by the owner", ["experiment"], registry=REGISTRY)
STATE_DUPLICATES = Gauge("curriculum_experiment_duplicates", "duplicate results ignored by the owner", ["experiment"],
                         registry=REGISTRY)
DEGENERATE = Gauge("curriculum_degenerate_ratio", "share of reported groups whose rewards were all equal",
                   ["experiment"], registry=REGISTRY)
ARM_PASS = Gauge("curriculum_arm_pass_rate", "observed mean reward of the arm's recent events (0..1)",
                 ["experiment", "arm"], registry=REGISTRY)
# cost in rollouts and tokens (curriculum.cost) and the strategy's live calibration (curriculum.calibration)
COST = Gauge("curriculum_cost", "rollouts and completion tokens spent: total, in degenerate groups (waste), in "
             "informative groups, and per informative group", ["experiment", "quantity"], registry=REGISTRY)
COST_KEYS = ("rollouts", "tokens", "waste_rollouts", "waste_tokens", "informative_groups", "informative_tokens",
             "rollouts_per_informative_group", "tokens_per_informative_group", "waste_share")
PREDICTION = Gauge("curriculum_prediction", "how well the strategy's lease-time predictions held up: calibration_brier "
                   "(of 'degenerate'), calibration_spearman (predicted vs realized pass rate; _latest: the newest "
                   "policy version), skip_gate_precision / recall / retests, screen_rollouts / tokens (overhead)",
                   ["experiment", "quantity"], registry=REGISTRY)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    LATENCY.labels(route, method, str(status)).observe(seconds)


def count_leased(experiment: str, items: int) -> None:
    LEASED.labels(experiment).inc(items)


def count_reported(experiment: str, ack: dict) -> None:
    EVENTS.labels(experiment).inc(ack["accepted"])
    DUPLICATES.labels(experiment).inc(ack["duplicates"])


def set_owner_totals(experiment: str, m: dict) -> None:
    """The gauges of one experiment, from its owner's `metrics()`."""
    EXPIRED.labels(experiment).set(m["leases_expired"])
    STATE_EVENTS.labels(experiment).set(m["events"])
    STATE_DUPLICATES.labels(experiment).set(m["duplicates"])
    DEGENERATE.labels(experiment).set(m["degenerate_ratio"])
    for arm, w in m["arms"].items():
        ARM_WEIGHT.labels(experiment, arm).set(w)
    for arm, p in m.get("pass_rates", {}).items():
        ARM_PASS.labels(experiment, arm).set(p)
    cost = m.get("cost", {})
    for k in COST_KEYS:
        if cost.get(k) is not None:
            COST.labels(experiment, k).set(cost[k])
    for k, v in m.get("predictions", {}).items():
        PREDICTION.labels(experiment, k).set(v)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
