"""Final return of policy-gradient run files: mean over the last 10 rounds of the agents' mean return."""

from __future__ import annotations

import sys

import numpy as np

from mpidrl.analysis import agent_mean, as_float, final_values, run_script
from mpidrl.store import read_run


def final_return(path: str, metric: str = "return", last: int = 10) -> tuple[float, float]:
    """(mean over trials, std over trials) of the last ``last`` rounds' agent-mean ``metric``."""
    per_trial = final_values(agent_mean(as_float(read_run(path))[metric]), last)
    return float(np.mean(per_trial)), float(np.std(per_trial))


def main(paths: list[str]) -> None:
    for path in paths:
        run = read_run(path)
        mean, std = final_return(path)
        algo = run.config["algo"]
        print(f"{path}: {algo['name']} alpha={algo.get('alpha')} final return {mean:.1f} +- {std:.1f}")


if __name__ == "__main__":
    run_script(lambda: main(sys.argv[1:]))
