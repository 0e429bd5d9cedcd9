"""Final return of policy-gradient run files: mean over the last 10 rounds of the agents' mean return."""

from __future__ import annotations

import sys
import warnings

import numpy as np

from mpidrl.store import read_run


def final_return(path: str, metric: str = "return", last: int = 10) -> tuple[float, float]:
    """(mean over trials, std over trials) of the last ``last`` rounds' agent-mean ``metric``."""
    run = read_run(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_trial = np.nanmean(np.nanmean(run.metrics[metric], axis=2)[:, -last:], axis=1)
    return float(np.mean(per_trial)), float(np.std(per_trial))


def main(paths: list[str]) -> None:
    for path in paths:
        run = read_run(path)
        mean, std = final_return(path)
        algo = run.config["algo"]
        print(f"{path}: {algo['name']} alpha={algo.get('alpha')} final return {mean:.1f} +- {std:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
