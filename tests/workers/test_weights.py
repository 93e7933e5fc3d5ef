"""Weight sync: the trainer publishes (object store + a version key in Redis), students pick up new versions."""
from __future__ import annotations

import torch

from workers.weights import WeightSubscriber, publish


def test_subscriber_sees_only_newer_versions(ray_local, redis_url):
    sub = WeightSubscriber(redis_url, "w")
    try:
        assert sub.poll() is None and sub.latest_version() == -1
        publish(redis_url, "w", 0, {"a": torch.zeros(3)})
        v, sd = sub.poll()
        assert v == 0 and torch.equal(sd["a"], torch.zeros(3))
        assert sub.poll() is None  # nothing new
        for v in (1, 2, 3):
            publish(redis_url, "w", v, {"a": torch.full((3,), float(v))})
        v, sd = sub.poll()  # a slow student skips straight to the latest version
        assert v == 3 and torch.equal(sd["a"], torch.full((3,), 3.0))
        late = WeightSubscriber(redis_url, "w")  # a student that joins later starts from the latest
        assert late.poll()[0] == 3
    finally:
        sub.delete()


def test_published_weights_are_a_copy(ray_local, redis_url):
    t = torch.ones(2)
    publish(redis_url, "copy", 1, {"a": t})
    t += 1  # the trainer keeps stepping in place
    sub = WeightSubscriber(redis_url, "copy")
    try:
        assert torch.equal(sub.poll()[1]["a"], torch.ones(2))
    finally:
        sub.delete()
