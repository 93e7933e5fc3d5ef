"""A step is a policy version: one step reported in 1 call or in K calls, in any order, leaves every strategy
in the same state (bit for bit), and snapshots taken mid-step continue identically (API.md, "A curriculum
step")."""
import numpy as np
import pytest

from curriculum import EventBatch, ItemPool, codec, make_strategy, strategy_names
from curriculum.simulator import SimConfig, SimulatedStudent

CFG = SimConfig(categories=3, noisy=1, items_per_category=40)
WARM = 5  # steps reported in one call each before the step under test


def same(a, b, path="state"):
    """Recursive exact equality of state dicts (numpy arrays compared bit for bit, nan == nan)."""
    assert type(a) is type(b) or (np.isscalar(a) and np.isscalar(b)), (path, type(a), type(b))
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{k}]")
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), path
    else:
        assert a == b, (path, a, b)


def warmed(name, seed=0):
    """A strategy after WARM one-call steps on the simulated student, and the evidence of the next step."""
    student = SimulatedStudent(CFG, seed=1)
    s = make_strategy(name, ItemPool(student.items()), seed=seed)
    for v in range(WARM):
        sel = s.select(16)
        r = student.rollout(sel.indices, sel.num_samples)
        s.observe(EventBatch(sel.indices, r, np.full(len(sel), v)))
        student.learn(sel.indices, r)
    sel = s.select(28)
    r = student.rollout(sel.indices, sel.num_samples)
    return s, EventBatch(sel.indices, r, np.full(len(sel), WARM))


def split(batch, k, rng):
    order = rng.permutation(len(batch))
    return [batch.subset(np.sort(part)) for part in np.array_split(order, k)]


@pytest.mark.parametrize("name", strategy_names())
@pytest.mark.parametrize("k", [2, 4, 7])
def test_one_step_in_k_shuffled_calls_equals_one_call(name, k):
    one, step = warmed(name)
    many, _ = warmed(name)
    one.observe(step)
    rng = np.random.default_rng(k)
    parts = split(step, k, rng)
    for j in rng.permutation(k):
        many.observe(parts[j])
    same(one.state_dict(), many.state_dict())
    # the next step's selection (drawn from the same RNG state) is the same too
    assert one.select(20).indices.tolist() == many.select(20).indices.tolist()
    assert one.describe() == many.describe()


@pytest.mark.parametrize("name", strategy_names())
def test_snapshot_mid_step_continues_identically(name):
    ref, step = warmed(name)
    parts = split(step, 4, np.random.default_rng(0))
    for p in parts:
        ref.observe(p)
    cut, _ = warmed(name)
    for p in parts[:2]:
        cut.observe(p)
    restored = make_strategy(name, cut.pool, seed=123)
    restored.load_state_dict(codec.decode(codec.encode(cut.state_dict())))
    for p in parts[2:]:
        restored.observe(p)
    same(ref.state_dict(), restored.state_dict())


def test_clock_counts_versions_not_calls():
    s, step = warmed("sec")
    assert s.steps == WARM and s.version == WARM - 1  # versions 0..WARM-1; the last one's step is open
    for p in split(step, 7, np.random.default_rng(0)):
        s.observe(p)
    assert s.steps == WARM + 1 and s.version == WARM
    s.observe(EventBatch.from_arrays([0], [[1, 0]], WARM + 3))  # versions may skip: still one step each
    assert s.steps == WARM + 2 and s.version == WARM + 3


def test_late_results_join_the_open_step():
    a, step = warmed("sec")
    b, _ = warmed("sec")
    late = EventBatch.from_arrays([1, 2], [[1, 0, 1, 0], [0, 0, 1, 1]], WARM - 3)
    a.observe(step)
    a.observe(late)
    b.observe(EventBatch.concat([step, EventBatch(late.item, late.rewards, np.full(2, WARM))]))
    assert a.steps == b.steps == WARM + 1
    same(a.state_dict()["q"], b.state_dict()["q"])
    assert a.events == b.events


def test_a_version_with_too_many_groups_is_split_into_steps(monkeypatch):
    import curriculum.steps as st

    monkeypatch.setattr(st, "MAX_STEP_GROUPS", 10)
    s, _ = warmed("progress")
    v0 = s.steps
    s.observe(EventBatch.from_arrays(list(range(25)), [[1, 0]] * 25, WARM))
    assert s.steps == v0 + 3  # the open step, then 10 + 10 closed; the last 5 are the open step
    assert len(s._step) == 5


@pytest.mark.parametrize("name", strategy_names())
def test_reads_between_shuffled_reports_change_nothing(name):
    """A read between reports folds what has arrived (the lazy fold); the next report rewinds the step and
    folds it again. Whatever the arrival order, with reads in between or not, the state is that of one call."""
    one, step = warmed(name)
    one.observe(step)
    ref = one.state_dict()
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        many, _ = warmed(name)
        parts = split(step, 4, rng)
        for n, j in enumerate(rng.permutation(4)):
            many.observe(parts[j])
            if n % 2 == seed % 2:
                many.describe()
        same(ref, many.state_dict())


@pytest.mark.parametrize("name", ["filter", "compose", "gated"])
def test_state_read_right_after_observe_sees_the_report(name):
    s, step = warmed(name)
    events = s.events
    s.observe(step)  # files the report; the first read folds it
    assert s.events == events + len(step)
    assert (s.n_groups[step.item] > 0).all()
    if name == "compose":  # a part's state settles its owner's reports
        t, _ = warmed(name)
        t.observe(step)
        assert np.array_equal(t.item.p_est, s.item.p_est, equal_nan=True)
        assert t.item.events == events + len(step)


def test_a_bad_report_is_rejected_before_it_is_filed():
    s, _ = warmed("sec")
    before = s.state_dict()
    with pytest.raises(IndexError):
        s.observe(EventBatch.from_arrays([s.pool.size], [[1, 0]], WARM))
    with pytest.raises(ValueError):
        EventBatch.from_arrays([0], [[np.nan, np.nan]], WARM)
    same(before, s.state_dict())
