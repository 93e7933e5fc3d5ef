"""Ray job entry point for the training run on a cluster:

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m deploy.job --config configs/tiny.yaml --compare uniform

The driver runs on the head node and joins the cluster (address="auto"); the rollout actors and the Ray
Train workers land on the worker groups (the autoscaler adds pods as they are requested). Same pipeline as
`curriculum run`, without the Typer CLI so that a job needs nothing but `python -m`.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m deploy.job", description="the curriculum training run, as a Ray job")
    p.add_argument("--config", help="YAML file with RunConfig fields (configs/*.yaml)")
    p.add_argument("--compare", action="append", metavar="NAME",
                   help="strategy to compare with (repeatable; default: the config's, uniform; '' for none)")
    p.add_argument("--steps", type=int, help="override train_steps")
    p.add_argument("--out", metavar="DIR", help="report folder (on the head node)")
    p.add_argument("--address", default="auto", help="Ray cluster to join (default: the job's own cluster)")
    return p.parse_args(argv)


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """Only what was given on the command line: the config file (or RunConfig defaults) keeps the rest."""
    compare = None if args.compare is None else [c for c in args.compare if c]  # `--compare ''`: none
    given = {"compare": compare, "train_steps": args.steps, "out": args.out}
    return {k: v for k, v in given.items() if v is not None}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from pydantic import ValidationError

    from deploy.pipeline import run_pipeline  # heavy imports (torch, ray) only once the arguments parse

    try:
        report = run_pipeline(args.config, address=args.address, overrides=overrides_from(args))
    except ValidationError as e:  # a bad config file fails the job with a readable message, not a traceback
        print(f"invalid config: {e}", file=sys.stderr)
        return 2
    # The job's log is what `ray job logs` shows: end with a machine-readable summary.
    print(json.dumps({"summary": report.get("summary")}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
