"""Adapters that plug the curriculum service into trainers people already run: TRL (`workers.adapters.trl`)
and verl (`workers.adapters.verl`). Each imports its peer library lazily and talks to the service only through
`services.client`, so the project's own venv never needs TRL or verl (they live in .venv-trl / .venv-verl,
made by scripts/setup_peer.sh).
"""
from __future__ import annotations


def rollout_id(experiment: str, batch_id: str, item_id: str) -> str:
    """The idempotency key of one leased item's group: a replayed step reports the same key, so the service
    counts it as a duplicate instead of a second event."""
    return f"{experiment}/{batch_id}/{item_id}"


def check_version(peer: str, version: str, supported: tuple[int, int], tested: str) -> None:
    """Fail loudly outside the major.minor range whose private hooks were read; warn once inside it."""
    import warnings

    try:
        mm = tuple(int(x) for x in version.split(".")[:2])
    except ValueError:
        mm = (-1, -1)
    if mm[:1] != supported[:1] or mm < supported:
        raise RuntimeError(f"{peer} {version} is not supported by this adapter: its hooks were verified on {peer} "
                           f"{supported[0]}.{supported[1]}.x (tested {tested}); pin {peer}=={tested}")
    if version != tested:
        warnings.warn(f"{peer} {version}: this adapter was tested on {tested}; the hooks it needs are present, "
                      "but their behaviour was not checked on this version", stacklevel=3)
