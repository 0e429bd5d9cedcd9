"""Compare ES / ESPC / ES-fixed run files on one figure: reward and messages, with 10-90 % bands.

The report's Figures 4.5-4.6 (section 4.7), 4.8-4.9 (4.8) and 4.10-4.11 (4.9). Left: mu_reward, the
discounted reward averaged over agents (band: 10th-90th percentile across trials of the per-trial agent
mean, :func:`mpidrl.analysis.center_band`). Middle: uplink messages per round summed over all agents (ES
with n agents sends n; the report's comparison "ESPC with n = 50 sends like ES with n = 25" is about this
count). Right: messages per agent (mu_frequency of section 3.2). A Markdown table of the same quantities
goes to stdout, with, for ESPC, the send fraction after the first k rounds against E[p_comm] for standard
normal z (m/n; (m-1)/n with the authors' binomial tail) and against the exact E[p_comm] for i.i.d. normal
utilities in a window of k. Runs are compared on their common completed
trials (trial l uses the same random keys in every run file).

    .venv/bin/python analysis/espc_compare.py results/report/s4_7/cartpole_*.h5 \\
        -o docs/figures/fig4_5_cartpole.png --title "CartPole-v1, section 4.7"
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from mpidrl.algorithms.espc import expected_comm_fraction, stationary_comm_fraction
from mpidrl.analysis import agent_mean, as_float, center_band, run_script
from mpidrl.store import Run, read_run


def first_trials(run: Run, trials: int) -> Run:
    """The run restricted to its first ``trials`` trials (trial l has the same random keys in every run),
    its metrics as float64 with NaN where a round was not written."""
    metrics = {k: v[:trials] for k, v in as_float(run).items()}
    diagnostics = {k: v[:trials] for k, v in run.diagnostics.items()}
    return Run(run.path, run.attrs, run.config, metrics, diagnostics)


def label(run: Run) -> str:
    algo = run.config["algo"]
    text = f"{algo['name'].upper()} n={run.config['agents']['n']}"
    if algo["name"] in ("espc", "es-fixed"):
        text += f" m={algo['m']}"
    if algo["name"] == "espc":
        text += f" k={algo['k']}"
    return text


def messages_per_round(run: Run) -> np.ndarray:
    """[T, R] uplink messages of all agents in each round."""
    return run.metrics["uplink_messages"].sum(axis=2).astype(float)


def expected(run: Run) -> str:
    """Measured send fraction after the first k rounds, E[p_comm] for standard normal z (m/n with the
    report's binomial tail, (m-1)/n with the shifted one), and the exact value for i.i.d. utilities in a
    window of k, both with the run's tail and zero-std rule."""
    algo, n = run.config["algo"], run.config["agents"]["n"]
    if algo["name"] == "es":
        return "1 | 1 | 1 |"
    k = algo.get("k", 1)
    measured = run.metrics["uplink_messages"][:, k:].mean()
    if algo["name"] == "espc":
        tail, zero_std = algo.get("binomial_tail", "exact"), algo.get("zero_std", "one")
        normal = expected_comm_fraction(n, algo["m"], tail)
        predicted = stationary_comm_fraction(n, algo["m"], k, tail, zero_std)
    else:
        normal = predicted = algo["m"] / n
    return f"{measured:.4f} | {normal:.3f} | {predicted:.4f} |"


def table(runs: list[Run], tail: int) -> str:
    head = (
        "| run | trials | mean reward, all rounds | mean reward, last {t} | msgs/round | msgs/agent/round "
        "| msgs/agent/round after k | E[p_comm] | i.i.d. prediction |"
    )
    lines = [head.format(t=tail), "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        reward = agent_mean(run.metrics["reward"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            per_trial_tail = np.nanmean(reward[:, -tail:], axis=1)
        lines.append(
            f"| {label(run)} | {reward.shape[0]} | {np.nanmean(reward):.1f} "
            f"| {per_trial_tail.mean():.1f} (trials {per_trial_tail.min():.0f}-{per_trial_tail.max():.0f}) "
            f"| {messages_per_round(run).mean():.2f} | {run.metrics['uplink_messages'].mean():.3f} | {expected(run)}"
        )
    return "\n".join(lines)


def rounds_ahead(runs: list[Run], start: int) -> str:
    """For each ESPC / ES-fixed run and each ES run: share of rounds after ``start`` with a higher mean reward."""
    lines = []
    for a in runs:
        for b in runs:
            if a.config["algo"]["name"] != "es" and b.config["algo"]["name"] == "es":
                ma, mb = (np.nanmean(agent_mean(r.metrics["reward"]), axis=0)[start:] for r in (a, b))
                lines.append(
                    f"{label(a)} above {label(b)} in {np.mean(ma > mb):.0%} of rounds {start + 1}-{len(ma) + start}"
                )
    return "\n".join(lines)


def plot(runs: list[Run], out: Path, title: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        (lambda r: agent_mean(r.metrics["reward"]), "discounted reward (mean over agents)"),
        (messages_per_round, "uplink messages / round (all agents)"),
        (lambda r: agent_mean(r.metrics["uplink_messages"]), "uplink messages / agent / round"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.2), constrained_layout=True)
    for run in runs:
        per_trial = [fn(run) for fn, _ in panels]
        xs = np.arange(1, per_trial[0].shape[1] + 1)
        trials = per_trial[0].shape[0]
        for ax, values, (_, ylabel) in zip(axes, per_trial, panels):
            mean, lo, hi = center_band(values)
            (line,) = ax.plot(xs, mean, lw=1.2, label=f"{label(run)} ({trials} trials)")
            if trials > 1:
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
            ax.set_xlabel("round")
            ax.set_ylabel(ylabel)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_small(fig, out)
    plt.close(fig)


def save_small(fig, out: Path, dpi: int = 90) -> None:
    """Save ``fig`` as a PNG with a 256-colour palette: a third of the bytes of a full-colour file, the
    same picture to the eye (line plots with a few colours and translucent bands)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    Image.open(buffer).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(out, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="RUN.h5")
    ap.add_argument("-o", "--output", required=True, metavar="FIG.png")
    ap.add_argument("--title")
    ap.add_argument("--tail", type=int, default=20, help="rounds at the end for the final-reward column")
    ap.add_argument("--start", type=int, default=50, help="rounds skipped by the rounds-ahead comparison")
    ap.add_argument("--trials", type=int, help="use the first TRIALS trials of each run (default: all completed)")
    args = ap.parse_args()
    runs = [read_run(p) for p in args.runs]
    # only trials that finished; runs cut short (or run with more trials) are compared on common trials
    done = min(int(r.attrs.get("trials_done", r.metrics["reward"].shape[0])) for r in runs)
    runs = [first_trials(r, min(done, args.trials or done)) for r in runs]
    plot(runs, Path(args.output), args.title)
    print(table(runs, args.tail))
    print(rounds_ahead(runs, args.start))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    run_script(main)
