"""RolloutQueue on a real Redis: at-least-once delivery, staleness, backpressure, dead letters, balancing."""
from __future__ import annotations

import threading
import time

import pytest

from workers.grpo import Group
from workers.queue import RolloutQueue, balance


def group(i: int, version: int = 0, category: str = "d1", rewards=(0.0, 1.0)) -> Group:
    return Group([1, 2], [[3], [4]], [[-0.1], [-0.2]], list(rewards), category, version, f"item-{i}")


@pytest.fixture()
def queue(redis_url):
    q = RolloutQueue(redis_url, "q", max_staleness=2, max_deliveries=3)
    yield q
    q.delete()


def test_round_trip_keeps_every_field(queue):
    g = Group([1, 2, 3], [[4, 5], [6]], [[-0.5, -0.25], [-1.0]], [1.0, 0.0], "d2", 7, "x", {"rollout_id": "r"}, 0.7)
    queue.put([g])
    [d] = queue.read("a", 10, block_ms=10)
    assert d.group == g


def test_dead_consumer_groups_are_reclaimed_and_trained_once(queue):
    queue.put([group(i) for i in range(10)])
    died = queue.read("rank-0", 6, block_ms=10)  # rank 0 reads 6 and dies before its step commits
    assert len(died) == 6
    trained: list[str] = []
    # rank 1 reads the 4 nobody holds; the 6 pending ones are not delivered to it as new
    fresh = queue.read("rank-1", 100, block_ms=10)
    assert len(fresh) == 4
    trained += [d.group.item_id for d in fresh]
    queue.ack([d.id for d in fresh])
    time.sleep(0.06)
    claimed = queue.claim_stale("rank-1", min_idle_ms=50)
    assert sorted(d.id for d in claimed) == sorted(d.id for d in died)
    assert all(d.deliveries == 2 for d in claimed)
    trained += [d.group.item_id for d in claimed]
    queue.ack([d.id for d in claimed])
    # nothing is left to hand out again, to anyone, in any way
    assert queue.read("rank-2", 100, block_ms=10) == []
    assert queue.claim_stale("rank-2", min_idle_ms=0) == []
    assert sorted(trained) == sorted(f"item-{i}" for i in range(10))
    s = queue.stats()
    assert (s["depth"], s["pending"], s["acked"], s["produced"], s["claimed"]) == (0, 0, 10, 10, 6)
    assert (s["produced_samples"], s["produced_tokens"]) == (20, 20)  # 2 one-token completions a group


def test_produced_counts_samples_and_tokens_of_groups_of_any_size(queue):
    queue.put([Group([1], [[3, 4, 5]] * 4, [[0.0] * 3] * 4, [0.0, 1.0, 0.0, 1.0], "d1", 0, "screened"),
               Group([1], [[3]] * 8, [[0.0]] * 8, [1.0] * 8, "d1", 0, "full")])
    s = queue.stats()
    assert (s["produced"], s["produced_samples"], s["produced_tokens"]) == (2, 12, 4 * 3 + 8)


def test_a_live_consumer_keeps_its_groups(queue):
    queue.put([group(i) for i in range(3)])
    mine = queue.read("rank-0", 10, block_ms=10)
    assert len(mine) == 3
    assert queue.claim_stale("rank-1", min_idle_ms=60_000) == []  # not idle long enough: not taken


def test_stale_groups_are_dropped_and_counted(queue):
    queue.put([group(0, version=0), group(1, version=3), group(2, version=5)])
    got = queue.read("rank-0", 10, block_ms=10, current_version=5)  # max_staleness = 2
    assert [d.group.item_id for d in got] == ["item-1", "item-2"]
    s = queue.stats()
    assert s["dropped_stale"] == 1 and s["depth"] == 2  # the stale one is gone from the stream too


def test_backpressure_blocks_producers_until_trainers_ack(queue):
    queue.put([group(i) for i in range(4)])
    assert not queue.has_room(4)
    assert queue.wait_for_room(4, timeout=0.2) is False
    read = queue.read("rank-0", 4, block_ms=10)
    assert not queue.has_room(4)  # read but not acked still counts: pending is depth too
    released = threading.Event()

    def producer():
        queue.wait_for_room(4)
        released.set()
        queue.put([group(99)])

    t = threading.Thread(target=producer)
    t.start()
    time.sleep(0.3)
    assert not released.is_set()
    queue.ack([read[0].id])
    t.join(5)
    assert released.is_set() and queue.depth() == 4
    assert queue.r.xlen(queue.stream) == 4  # never trimmed: every unacked group is still there


def test_dead_letter_after_max_deliveries(queue):
    queue.put([group(0)])
    queue.read("rank-0", 1, block_ms=10)  # delivery 1
    for n in (2, 3):  # two more consumers take it over and die
        got = queue.claim_stale(f"rank-{n}", min_idle_ms=0)
        assert [d.deliveries for d in got] == [n]
    assert queue.claim_stale("rank-9", min_idle_ms=0) == []  # delivery 4 > 3: dead-lettered instead
    s = queue.stats()
    assert (s["dead_letter"], s["dead_lettered"], s["depth"], s["pending"]) == (1, 1, 0, 0)
    [(_, fields)] = queue.r.xrange(queue.dead)
    assert b"g" in fields and b"id" in fields


def test_balance_follows_proportions_and_drops_degenerate():
    groups = ([group(i, category="d1") for i in range(20)] + [group(i, category="d2") for i in range(20)]
              + [group(i, category="d3", rewards=(1.0, 1.0)) for i in range(5)])
    idx, degenerate = balance(groups, {"d1": 0.25, "d2": 0.75, "d3": 1.0}, 8)
    assert degenerate == 5
    cats = [groups[i].category for i in idx]
    assert len(idx) == 8 and cats.count("d1") == 2 and cats.count("d2") == 6


def test_balance_hands_a_short_category_share_to_the_others():
    groups = [group(i, category="d1") for i in range(10)] + [group(i, category="d2") for i in range(1)]
    idx, _ = balance(groups, {"d1": 0.5, "d2": 0.5}, 6)
    cats = [groups[i].category for i in idx]
    assert len(idx) == 6 and cats.count("d2") == 1 and len(set(idx)) == 6


def test_discarded_groups_free_the_budget_and_are_counted(queue):
    queue.put([group(i) for i in range(4)])
    got = queue.read("rank-0", 4, block_ms=10)
    assert not queue.has_room(4)
    queue.discard(got[:3], "dropped_degenerate")
    s = queue.stats()
    assert (s["depth"], s["pending"], s["dropped_degenerate"]) == (1, 1, 3) and queue.has_room(4)
