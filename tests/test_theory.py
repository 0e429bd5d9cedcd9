"""The simulated clock of the aggregation rounds against the closed forms of mpidrl.theory."""

import io

import numpy as np
import pytest
from scipy import stats

from mpidrl import theory, timing
from mpidrl.algorithms.nigt import malenia_done
from mpidrl.comm import Runtime
from mpidrl.config import from_dict, load
from mpidrl.envs import make_env, spec_of
from mpidrl.log import Progress
from mpidrl.protocols.plans import plan_first
from mpidrl.run import Experiment
from mpidrl.store import read_run

N = 10
PROFILES = {
    "equal": 1.0,
    "sqrt(i)": "sqrt(i)",
    "straggler": "100 if i == 10 else 1",
    "linear": "i",
    "tenths": "0.1 * i",
}
"""constant per-agent times h_i (formulas of the 1-based agent i), n = 10 agents"""
MS = (1, 2, 3, 5, 9, 10, 11, 20, 50, 99, 100, 333, 1000)


def _model(h, n: int = N, seed: int = 0) -> tuple[timing.TimeModel, np.ndarray]:
    """A simulated clock built from a config, and the h_i it holds (for a random table, the means)."""
    cfg = from_dict({"agents": {"n": n}, "time": {"mode": "simulated", "h": h}})
    return timing.TimeModel(cfg.time, n, seed=seed), theory.agent_times(cfg.time, n)


def _rennala(model: timing.TimeModel, M: int, round: int = 0) -> tuple[np.ndarray, float]:
    return plan_first(model, round, lambda counts: counts.sum() >= M)


@pytest.mark.parametrize("name", PROFILES)
def test_rennala_round_is_the_mth_smallest_multiple_of_the_times(name):
    model, h = _model(PROFILES[name])
    integers = bool(np.all(h == np.round(h)))
    for M in MS:
        _, t = _rennala(model, M)
        exact = theory.rennala_exact(h, M)
        if integers:  # sums of small integers are exact in floating point: the same bits
            assert t == exact, (M, t, exact)
        else:  # the clock adds h_i k times where the theory multiplies once
            assert abs(t - exact) <= 1e-12 * exact, (M, t, exact)


@pytest.mark.parametrize("name", PROFILES)
def test_rennala_round_lies_between_half_the_closed_form_and_the_closed_form(name):
    model, h = _model(PROFILES[name])
    for M in MS:
        _, t = _rennala(model, M)
        bound = theory.rennala_bound(h, M)
        assert bound / 2 <= t * (1 + 1e-12), (M, t, bound)
        assert t <= bound * (1 + 1e-12), (M, t, bound)


def test_the_closed_form_constants_cannot_be_improved():
    # one agent, one gradient: the round takes h and t* = 2h, the lower bound's constant 1/2 is reached
    model, h = _model(3.0, n=1)
    assert _rennala(model, 1)[1] == 3.0 and theory.rennala_bound(h, 1) == 6.0
    # equal times, M = 1: T / t* = n / (n + 1), as close to the upper bound's 1 as n is large
    model, h = _model(1.0, n=200)
    assert _rennala(model, 1)[1] / theory.rennala_bound(h, 1) == pytest.approx(200 / 201)


def test_rennala_closed_form_by_hand_and_in_any_agent_order():
    h = [3.0, 1.0, 2.0]
    # (m + M) / sum_{i<=m} 1/h_(i) for M = 4: 5 / 1, 6 / 1.5, 7 / (11/6)
    assert theory.rennala_bound(h, 4) == pytest.approx(42 / 11)
    assert theory.rennala_best_m(h, 4) == 3
    assert theory.rennala_exact(h, 4) == 3.0  # completions 1, 2, 2, 3 (tests/test_nigt.py by hand)
    assert theory.rennala_bound(h, 4) == theory.rennala_bound(sorted(h), 4)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError):
            theory.rennala_bound(h, bad)
    for bad in ([1.0, 0.0], [1.0, float("inf")], []):
        with pytest.raises(ValueError):
            theory.rennala_exact(bad, 1)


def test_the_straggler_counts_only_when_the_closed_form_takes_it_in():
    model, h = _model(PROFILES["straggler"])
    # t* leaves the straggler out (best m = 9) exactly while M <= 891 = 9 * 99, and the simulated rounds
    # give it no gradient then; its first gradient (t = 100) counts once the nine others' 100th are in
    for M in (10, 100, 891):
        assert theory.rennala_best_m(h, M) == 9
        assert _rennala(model, M)[0][-1] == 0
    assert theory.rennala_best_m(h, 892) == 10
    assert _rennala(model, 900)[0][-1] == 0
    assert _rennala(model, 901)[0][-1] == 1


@pytest.mark.parametrize("name", PROFILES)
def test_synchronous_round_is_ceil_m_over_n_times_the_slowest(name):
    model, h = _model(PROFILES[name])
    for M in MS:
        q = -(-M // N)
        counts, t = plan_first(model, 0, lambda c, q=q: bool(np.all(c >= q)), cap=q)
        assert counts.tolist() == [q] * N
        assert abs(t - theory.sync_exact(h, M)) <= 1e-12 * t
        if name == "equal":  # with equal times Rennala's round and the synchronous one coincide
            assert theory.sync_exact(h, M) == theory.rennala_exact(h, M)


@pytest.mark.parametrize("name", PROFILES)
def test_malenia_round_is_exact_and_within_its_bounds(name):
    model, h = _model(PROFILES[name])
    for M in MS:
        _, t = plan_first(model, 0, lambda c, M=M: malenia_done(c, M))
        assert abs(t - theory.malenia_exact(h, M)) <= 1e-12 * t, M
        lower, upper = theory.malenia_bounds(h, M)
        assert lower * (1 - 1e-12) <= t <= upper * (1 + 1e-12), (M, lower, t, upper)


EXPONENTIAL = {"exponential, mean 1": 1.0, "exponential, mean sqrt(i)": "sqrt(i)"}
ROUNDS = 1000


@pytest.mark.parametrize("name", EXPONENTIAL)
@pytest.mark.parametrize("M", [1, 10, 100])
def test_rennala_round_with_exponential_times_is_gamma_distributed(name, M):
    model, mu = _model({"dist": "exponential", "mean": EXPONENTIAL[name]}, seed=3)
    times = np.array([_rennala(model, M, round)[1] for round in range(ROUNDS)])
    mean, variance = theory.rennala_exponential(mu, M)
    # Gamma(M, rate sum 1/mu_i): mean within 4 standard errors, variance within 15 %, the whole law by KS
    assert abs(times.mean() - mean) <= 4 * np.sqrt(variance / ROUNDS)
    assert times.var() == pytest.approx(variance, rel=0.15)
    assert stats.kstest(times, stats.gamma(M, scale=mean / M).cdf).pvalue > 1e-3
    # the deterministic closed form, with the means as h, still bounds the mean round from above; but its
    # lower bound t*/2 does not hold for random times: with M = 1 the round is far shorter
    bound = theory.rennala_bound(mu, M)
    assert times.mean() < bound
    if M == 1:
        assert times.mean() < bound / 4


def test_a_rennala_run_advances_its_clock_by_the_exact_round_time_plus_the_allreduce(tmp_path):
    sets = ['algo.name="rennala-nigt"', f"agents.n={N}", "algo.H=5", "algo.M_init=3", "algo.M=7"]
    sets += ["run.rounds=4", "policy.hidden=[4]", 'time.mode="simulated"', 'time.h="sqrt(i)"', "time.kappa=0.5"]
    cfg = load(None, sets)
    out = tmp_path / "run.h5"
    Experiment(cfg, spec_of(make_env(cfg.env)), out, Runtime(), progress=Progress(0, 1, 4, stream=io.StringIO())).run()
    clock = read_run(out).metrics["sim_time"][0]
    h = np.sqrt(np.arange(1, N + 1))
    expected = np.cumsum([theory.rennala_exact(h, M) + 0.5 for M in (3, 7, 7, 7)])
    np.testing.assert_allclose(clock, expected, rtol=1e-12)
