"""One local stack (Ray + Serve + the controller, on the session's Redis) shared by the service tests."""
from __future__ import annotations

import pytest

from services.redis_server import free_port


@pytest.fixture(scope="session")
def stack(redis_server, tmp_path_factory):
    import ray
    from ray import serve

    from deploy.local import LocalStack
    from services.app import build_app

    s = LocalStack(tmp_path_factory.mktemp("stack"), port=free_port(), redis_url=redis_server.url, replicas=2)
    s.start()
    # a second app on the same proxy with tokens (admin s3cret, worker w-tok, read r-tok), for the auth tests
    serve.run(build_app(redis_server.url, token="s3cret", max_body_bytes=1 << 20,
                        scoped_tokens={"r-tok": "read", "w-tok": "worker"}), name="secured", route_prefix="/secured")
    yield s
    if ray.is_initialized():
        s.stop()


@pytest.fixture()
def api(stack, redis_url):
    """An HTTP client to a clean controller (the redis_url fixture flushes Redis)."""
    import ray

    from services.client import CurriculumClient
    from services.keys import NAMESPACE

    # owners of earlier tests hold state in memory: retire them so names can be reused
    for a in ray.util.list_named_actors(all_namespaces=True):
        if a["namespace"] == NAMESPACE and a["name"].startswith("owner:"):
            ray.kill(ray.get_actor(a["name"], namespace=NAMESPACE), no_restart=True)
    with CurriculumClient(stack.url, retries=0) as c:
        yield c
