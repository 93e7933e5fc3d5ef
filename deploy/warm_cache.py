"""Warm starts shipped with the code: the main job's default warm start, so that a fresh clone skips its SFT run.

The pinned warm start (workers/warm_start_job.py) trains the same weights on every machine, but slowly: one
thread and ATen's non-vectorised kernels, about 2-8 minutes of a 2-core machine, most of the main job's 10-minute
budget. `deploy/warm_starts/<weights key>/` holds what that run wrote (weights, tokenizer, the pass-rate map of
the default held-out set) and a manifest of sha256 sums; `adopt` copies a folder into the run's cache only when
every file matches its sum, else the job trains as before. The key is the cache key of deploy.pipeline
(model, SFT config, source, pinned environment), so a changed default no longer finds its folder and trains.

    python -m deploy.warm_cache runs/warm-start/<key>     # ship a cache folder (writes deploy/warm_starts/<key>)
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "warm_starts"
MANIFEST = "manifest.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def adopt(key: str, folder: Path, shipped: Path = SHIPPED) -> bool:
    """Copy the shipped warm start `key` into `folder` if every file matches its recorded sha256."""
    src = shipped / key
    if not (src / MANIFEST).exists():
        return False
    sums = json.loads((src / MANIFEST).read_text())["sha256"]
    if any(not (src / f).exists() or sha256(src / f) != h for f, h in sums.items()):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    for f in sums:
        shutil.copy2(src / f, folder / f)
    return True


def ship(folder: Path, shipped: Path = SHIPPED) -> Path:
    """Copy a cache folder (weights, tokenizer, maps; not the job specs, which name local paths) to `shipped`."""
    dest = shipped / folder.name
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.endswith(".job.json"))
    for f in files:
        shutil.copy2(folder / f, dest / f)
    (dest / MANIFEST).write_text(json.dumps({"sha256": {f: sha256(dest / f) for f in files}}, indent=1))
    return dest


if __name__ == "__main__":
    print(ship(Path(sys.argv[1])))
