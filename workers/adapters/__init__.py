"""Adapters that plug the curriculum service into trainers people already run: TRL (`workers.adapters.trl`)
and verl (`workers.adapters.verl`). Each imports its peer library lazily and talks to the service only through
`services.client`, so the project's own venv never needs TRL or verl (they live in .venv-trl / .venv-verl,
made by scripts/venv.sh trl|verl).
"""
from __future__ import annotations


def rollout_id(experiment: str, batch_id: str, item_id: str) -> str:
    """The idempotency key of one leased item's group: a replayed step reports the same key, so the service
    counts it as a duplicate instead of a second event."""
    return f"{experiment}/{batch_id}/{item_id}"


def check_version(peer: str, version: str, lo: tuple[int, int], hi: tuple[int, int], tested: str) -> None:
    """Fail loudly outside [lo, hi) (major, minor): the versions whose private hooks were read; warn once inside
    it on a version other than the tested one."""
    import warnings

    try:
        mm = tuple(int(x) for x in version.split(".")[:2])
    except ValueError:
        mm = (-1, -1)
    if not lo <= mm < hi:
        raise RuntimeError(f"{peer} {version} is not supported by this adapter: the hooks it needs were verified in "
                           f"{peer} {lo[0]}.{lo[1]} up to (not including) {hi[0]}.{hi[1]}; tested on {tested} "
                           f"(pip install {peer}=={tested})")
    if version != tested:
        warnings.warn(f"{peer} {version}: this adapter was tested on {tested}; the hooks it needs are present in "
                      "this version, but the run was not tested on it", stacklevel=3)
