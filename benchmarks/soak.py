"""Soak: a long run with many logical agents keeps its memory flat.

Runs ES in this process (world size 1) on CartPole capped at a few steps, so rounds are cheap and many,
and samples the resident memory every ``--every`` rounds through the progress hook. Prints the samples
and the growth between the first sample after warm-up and the last.

    python benchmarks/soak.py --agents 500 --rounds 3000 [--record-messages]
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from mpidrl import validate
from mpidrl.comm import Runtime
from mpidrl.config import load
from mpidrl.log import Progress
from mpidrl.run import Experiment


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


class Sampler(Progress):
    """A silent progress report that samples resident memory every ``every`` rounds."""

    def __init__(self, rounds: int, every: int):
        super().__init__(0, 1, rounds, stream=io.StringIO(), bar=False)
        self.every, self.samples = every, []

    def update(self, trial, round, *args, **kwargs) -> None:
        if (round + 1) % self.every == 0:
            self.samples.append((round + 1, rss_mib()))


def soak(
    agents: int, rounds: int, every: int, record_messages: bool, out: Path, max_steps: int = 5
) -> list[tuple[int, float]]:
    cfg = load(
        None,
        [
            f"agents.n={agents}",
            f"run.rounds={rounds}",
            f"env.max_steps={max_steps}",
            "policy.hidden=[8, 8]",
            f"run.record_messages={str(record_messages).lower()}",
            "run.checkpoint_every=100",
        ],
    )
    sampler = Sampler(rounds, every)
    Experiment(cfg, validate.check(cfg).env_spec, out, Runtime(), progress=sampler).run()
    return sampler.samples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3000)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--record-messages", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "soak.h5"
        samples = soak(args.agents, args.rounds, args.every, args.record_messages, out)
        size = out.stat().st_size
    for r, mib in samples:
        print(f"round {r:6d}  rss {mib:8.1f} MiB")
    print(
        f"growth after warm-up: {samples[-1][1] - samples[0][1]:+.1f} MiB over {samples[-1][0] - samples[0][0]} "
        f"rounds; run file {size / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
