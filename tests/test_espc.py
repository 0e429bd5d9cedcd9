"""ESPC and ES-fixed: the mathematics of p_comm, the agents' decisions, and their measured frequency."""

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import ndtr
from scipy.stats import binom, norm

from mpidrl.algorithms.es import perturbation
from mpidrl.algorithms.espc import (
    ESFixedWorker,
    ESPCWorker,
    comm_probability,
    expected_comm_fraction,
    standardize,
    stationary_comm_fraction,
    utility,
)
from mpidrl.config import load
from mpidrl.envs import make_env, spec_of
from mpidrl.protocols import Context

CASES = [(2, 1), (5, 2), (10, 3), (10, 10), (50, 1), (50, 5), (50, 25), (50, 45), (200, 17)]


@pytest.mark.parametrize("n, m", CASES)
def test_expected_p_comm_is_m_over_n_for_standard_normal_z(n, m):
    # over p uniform on [0, 1] (p = Phi(z) with z standard normal)
    over_p, _ = quad(lambda p: comm_probability(p, n, m), 0, 1, epsabs=1e-14, epsrel=1e-13, limit=200)
    assert abs(over_p - m / n) < 1e-9
    # over z with the normal density (the report's integral, with Phi and the density it leaves out)
    over_z, _ = quad(lambda z: comm_probability(ndtr(z), n, m) * norm.pdf(z), -np.inf, np.inf, epsabs=1e-14, limit=400)
    assert abs(over_z - m / n) < 1e-9


@pytest.mark.parametrize("n, m", CASES)
def test_comm_probability_is_the_binomial_tail(n, m):
    p = np.linspace(0, 1, 41)
    assert np.allclose(comm_probability(p, n, m), binom.sf(n - m - 1, n - 1, p), rtol=1e-12, atol=1e-15)
    direct = sum(math.comb(n - 1, j) * 0.3**j * 0.7 ** (n - 1 - j) for j in range(n - m, n))
    assert comm_probability(0.3, n, m) == pytest.approx(direct, rel=1e-10, abs=1e-300)


TAILS = {"exact": lambda n, m: m / n, "shifted": lambda n, m: (m - 1) / n, "all_agents": lambda n, m: (m + 1) / (n + 1)}


@pytest.mark.parametrize("tail", TAILS)
@pytest.mark.parametrize("n, m", CASES)
def test_expected_p_comm_of_each_binomial_tail_is_its_closed_form(n, m, tail):
    closed = TAILS[tail](n, m)
    assert expected_comm_fraction(n, m, tail) == pytest.approx(closed, abs=1e-15)
    over_p, _ = quad(lambda p: comm_probability(p, n, m, tail), 0, 1, epsabs=1e-14, epsrel=1e-13, limit=200)
    assert abs(over_p - closed) < 1e-9


@pytest.mark.parametrize("n, m", CASES)
def test_shifted_and_all_agents_tails_are_the_report_codes_formulas(n, m):
    p = np.linspace(0, 1, 41)
    shifted = 1 - binom.cdf(n - m, n - 1, p)  # CommunicationSchemes.py (CartPole, Ant)
    all_agents = 1 - binom.cdf(n - m - 1, n, p)  # ESPCAgent.py (grid worlds)
    assert np.allclose(comm_probability(p, n, m, "shifted"), shifted, rtol=1e-10, atol=1e-14)
    assert np.allclose(comm_probability(p, n, m, "all_agents"), all_agents, rtol=1e-10, atol=1e-14)


def test_first_round_p_comm_of_the_shifted_tail():
    first = [float(comm_probability(0.5, 50, m, "shifted")) for m in (15, 25, 30)]
    assert first == pytest.approx([0.000701, 0.387725, 0.873565], abs=5e-7)  # not 0.5 at m = n/2
    assert comm_probability(0.5, 50, 25) == pytest.approx(0.5, abs=1e-15)


def test_monte_carlo_of_figure_4_1_agrees_with_m_over_n():
    n, z = 50, np.random.default_rng(3).standard_normal(100_000)
    ms = np.arange(1, n + 1, 6)
    estimate = np.array([comm_probability(ndtr(z), n, m).mean() for m in ms])
    # each estimate has std <= sqrt(0.25 / 1e5) = 0.0016; the report quotes a MSE of order 1e-6
    assert np.mean((estimate - ms / n) ** 2) < 1e-5
    assert np.max(np.abs(estimate - ms / n)) < 0.01


def small_ctx(algo: str, n: int, **algo_kwargs) -> Context:
    sets = [f"agents.n={n}", f'algo.name="{algo}"', "env.max_steps=20", "policy.hidden=[4]"]
    sets += [f"algo.{k}={v}" for k, v in algo_kwargs.items()]
    cfg = load(None, sets)
    env = make_env(cfg.env)
    return Context(cfg, 0, spec_of(env))


def decide(worker, t, agent, f, eps):
    """One agent's decision: (sent, (utility, p_comm)) as plain numbers."""
    sent, diagnostics = worker.decide(t, [agent], np.array([f]), np.asarray(eps, dtype=float)[None])
    return bool(sent[0]), tuple(float(d[0]) for d in diagnostics)


@pytest.mark.parametrize("n, m", [(10, 3), (10, 5), (10, 8), (7, 7)])
def test_first_round_p_comm_is_the_fair_coin_tail(n, m):
    ctx = small_ctx("espc", n, m=m, k=5)
    worker = ESPCWorker([ctx], range(n))
    worker.receive([np.zeros(worker.policy.size)])
    expected = binom.sf(n - m - 1, n - 1, 0.5)  # P[Bi(n-1, 1/2) >= n-m]
    res = worker.act(0, range(n))
    u, p_comm = res.diagnostics
    assert p_comm == pytest.approx(np.full(n, expected), rel=1e-12)
    for agent in range(n):
        eps = perturbation(ctx, 0, agent, worker.policy.size)
        assert u[agent] == pytest.approx(res.reward[agent] * np.linalg.norm(eps), rel=1e-12)


def test_rolling_window_mean_and_population_std_include_the_current_utility():
    n, m, k = 8, 3, 3
    ctx = small_ctx("espc", n, m=m, k=k)
    worker = ESPCWorker([ctx], [2, 5])
    eps = np.full(4, 0.5)  # ||eps|| = 1
    fs = [3.0, 1.0, 4.0, 1.0, 5.0]
    for t, f in enumerate(fs):
        _, (u, p_comm) = decide(worker, t, 5, f, eps)
        window = np.array(fs[max(0, t - k + 1) : t + 1])
        s = window.std() if window.std() > 0 else 1.0
        z = (f - window.mean()) / s
        assert u == f
        assert p_comm == pytest.approx(binom.sf(n - m - 1, n - 1, norm.cdf(z)), rel=1e-12)
    # agent 2 has its own history, untouched
    assert worker.count[0] == 0 and worker.count[1] == k
    assert standardize(7.0, np.array([7.0])) == 0.0


def test_a_silent_agent_does_not_send_while_its_window_has_std_zero():
    n, m, k = 8, 4, 3
    silent, one = (ESPCWorker([small_ctx("espc", n, m=m, k=k, zero_std=f'"{z}"')], [0, 1]) for z in ("silent", "one"))
    eps = np.full(4, 0.5)
    for t, f in enumerate([0.0, 0.0, 0.0, 2.0, 1.0]):  # the Frozen Lake case: no reward, no utility
        sent, (u, p_comm) = decide(silent, t, 1, f, eps)
        _, (_, p_one) = decide(one, t, 1, f, eps)
        if t < 3:  # std 0: silent sends nothing (no NaN), "one" uses z = 0
            assert (sent, p_comm) == (False, 0.0) and p_one == pytest.approx(binom.sf(n - m - 1, n - 1, 0.5))
        else:
            assert p_comm == p_one > 0


def test_decisions_use_the_agents_keyed_stream_and_resume_exactly():
    ctx = small_ctx("espc", 6, m=2, k=4)
    a, b = ESPCWorker([ctx], range(6)), ESPCWorker([ctx], range(6))
    eps = np.random.default_rng(0).standard_normal(10)
    for t in range(5):
        assert decide(a, t, 1, float(t % 3), eps) == decide(b, t, 1, float(t % 3), eps)
    saved = a.state_dict()
    fresh = ESPCWorker([ctx], range(6))
    fresh.load_state_dict(saved)
    for t in range(5, 12):
        assert decide(fresh, t, 1, 0.3 * t, eps) == decide(a, t, 1, 0.3 * t, eps)
    # a worker hosting only agent 1 decides the same (block boundaries do not matter)
    alone, pair = ESPCWorker([ctx], [1]), ESPCWorker([ctx], [0, 1])
    for t in range(12):
        decide(pair, t, 0, 5.0, eps)
        assert decide(alone, t, 1, 0.3 * t, eps) == decide(pair, t, 1, 0.3 * t, eps)


@pytest.mark.parametrize("n, m, k", [(10, 2, 3), (10, 2, 10), (12, 9, 5), (8, 4, 2)])
def test_long_stationary_run_sends_the_predicted_fraction(n, m, k):
    """Utilities i.i.d. normal: the send fraction matches E[p_comm] for a window of k (not m/n when k is small)."""
    ctx = small_ctx("espc", n, m=m, k=k)
    worker = ESPCWorker([ctx], range(n))
    eps = np.ones(1)
    rounds = 800
    f = np.random.default_rng(11).normal(100.0, 10.0, size=(rounds, n))
    sent = np.array([[decide(worker, t, i, f[t, i], eps)[0] for i in range(n)] for t in range(rounds)])
    burn = k  # the first k-1 rounds have shorter windows
    measured = sent[burn:].mean()
    expected = stationary_comm_fraction(n, m, k)
    # Bernoulli std of a mean of N decisions is at most 0.5/sqrt(N) (about 0.006 here); the windows of
    # one agent overlap, so allow 4 such std and a little more
    assert abs(measured - expected) < 4 * 0.5 / math.sqrt(sent[burn:].size) + 0.002
    if k >= 10:
        assert abs(expected - m / n) < 0.02


@pytest.mark.parametrize("tail", ["shifted", "all_agents"])
def test_stationary_fraction_of_the_other_tails(tail):
    closed = TAILS[tail](50, 10)
    gaps = [abs(stationary_comm_fraction(50, 10, k, tail) - closed) for k in (5, 10, 30, 100)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.002
    assert stationary_comm_fraction(50, 10, 1, tail, "silent") == 0.0
    rng = np.random.default_rng(5)
    u = rng.standard_normal((200_000, 5))
    z = (u[:, -1] - u.mean(1)) / u.std(1)
    got = comm_probability(ndtr(z), 50, 10, tail).mean()
    assert got == pytest.approx(stationary_comm_fraction(50, 10, 5, tail), abs=0.003)


def test_stationary_fraction_tends_to_m_over_n():
    assert stationary_comm_fraction(50, 25, 5) == pytest.approx(0.5, abs=1e-12)  # symmetric
    assert stationary_comm_fraction(50, 10, 1) == pytest.approx(binom.sf(39, 49, 0.5))
    gaps = [abs(stationary_comm_fraction(50, 10, k) - 0.2) for k in (5, 10, 30, 100)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.002
    rng = np.random.default_rng(5)
    u = rng.standard_normal((200_000, 5))
    z = (u[:, -1] - u.mean(1)) / u.std(1)
    assert comm_probability(ndtr(z), 50, 10).mean() == pytest.approx(stationary_comm_fraction(50, 10, 5), abs=0.003)


def test_es_fixed_sends_with_probability_m_over_n():
    n, m = 10, 3
    ctx = small_ctx("es-fixed", n, m=m)
    worker = ESFixedWorker([ctx], range(n))
    eps = np.ones(3)
    sent = np.array([[decide(worker, t, i, 1.0, eps)[0] for i in range(n)] for t in range(2000)])
    assert abs(sent.mean() - m / n) < 4 * math.sqrt(0.3 * 0.7 / sent.size)
    assert decide(worker, 0, 0, 2.0, eps)[1] == (2.0 * math.sqrt(3), m / n)
    assert utility(-2.0, np.array([3.0, 4.0])) == -10.0


@pytest.mark.parametrize(
    "sets, message",
    [
        (["agents.n=10", "algo.m=11"], "algo.m: must be <= agents.n = 10, got 11"),
        (["agents.n=10", "algo.m=0"], "algo.m: must be >= 1, got 0"),
        (["agents.n=10", "algo.k=0"], "algo.k: must be in [1, 100000], got 0"),
        (["agents.n=10", "algo.sigma=0"], "algo.sigma: must be > 0"),
        (["agents.n=10", "algo.sigma=-1"], "algo.sigma: must be > 0"),
        (["agents.n=10", 'algo.name="es-fixed"', "algo.m=12"], "algo.m: must be <= agents.n = 10, got 12"),
        (["agents.n=10", 'algo.downlink="theta"'], "algo.downlink: expected one of 'params', 'returns'"),
    ],
)
def test_bad_espc_input_is_one_line_and_exit_2(tmp_path, sets, message):
    from helpers import mpidrl, write_config

    cfg = write_config(tmp_path / "c.toml", '[algo]\nname = "espc"\nm = 5\n')
    args = ["validate", str(cfg)]
    for s in sets:
        args += ["--set", s]
    proc = mpidrl(args, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"mpidrl: error: {message}")
    assert proc.stderr.strip().count("\n") == 0


def test_long_espc_run_communicates_about_m_over_n(tmp_path):
    """300 rounds of 10 CartPole agents (episodes capped at 10 steps, so the run is cheap and stationary).

    Tolerance 0.03 on the fraction of the 2,900 decisions after the first k rounds: the Bernoulli noise
    of that mean is sqrt(0.3 * 0.7 / 2900) = 0.0085 (the 0.03 allows 2.5 of those on top of the 0.010 that
    a window of k = 10 adds even for ideal i.i.d. normal utilities, see stationary_comm_fraction).
    """
    from helpers import mpidrl, write_config

    from mpidrl.store import read_run

    n, m, k = 10, 3, 10
    cfg = write_config(
        tmp_path / "c.toml",
        f'[run]\nseed = 5\nrounds = 300\n[env]\nid = "CartPole-v1"\nmax_steps = 10\n[agents]\nn = {n}\n'
        f'[algo]\nname = "espc"\nm = {m}\nk = {k}\nsigma = 0.05\n[policy]\nhidden = [4]\n',
    )
    mpidrl(["run", str(cfg), "--out", str(tmp_path / "r.h5")], timeout=120)
    sent = read_run(tmp_path / "r.h5").metrics["uplink_messages"][0, k:]
    assert abs(sent.mean() - m / n) < 0.03
    assert abs(stationary_comm_fraction(n, m, k) - m / n) < 0.011


REPORT = {
    "CartPole-v1": {"hidden": (8, 8), "lr": 0.01, "l2": 0.05, "sigma": 0.05, "gamma": 1.0, "rounds": (200,)},
    "Ant-v5": {"hidden": (64, 64), "lr": 0.005, "l2": 0.05, "sigma": 0.02, "gamma": 0.99, "rounds": (200, 300)},
}


def test_report_configs_carry_the_reports_hyperparameters():
    from helpers import ROOT

    paths = sorted((ROOT / "configs" / "report").glob("s4_*/*.toml"))
    assert len(paths) >= 28
    for path in paths:
        cfg = load(path)
        want = REPORT[cfg.env.id]
        got = {
            "hidden": cfg.policy.hidden,
            "lr": cfg.optim.lr,
            "l2": cfg.optim.l2,
            "sigma": cfg.algo.sigma,
            "gamma": cfg.env.gamma,
        }
        assert got == {k: v for k, v in want.items() if k != "rounds"}, path
        assert cfg.run.rounds in want["rounds"] and cfg.optim.name == "adam" and cfg.agents.n in (25, 50), path
        assert cfg.algo.fitness_shaping == "none" and not cfg.algo.antithetic, path
        assert path.stem.startswith({"CartPole-v1": "cartpole", "Ant-v5": "ant"}[cfg.env.id]), path
        assert cfg.run.out == f"results/report/{path.parent.name}/{path.stem}.h5", path


def test_report_code_configs_carry_the_authors_settings():
    from helpers import ROOT

    paths = sorted((ROOT / "configs" / "report_code").glob("*.toml"))
    assert len(paths) >= 40
    figures = set()
    for path in paths:
        text, cfg = path.read_text(), load(path)
        figures.add(path.stem.split("_")[0] + "_" + path.stem.split("_")[1])
        figure = path.stem.split("_")[0][3:] + "." + path.stem.split("_")[1]  # fig4_11_ant_... -> 4.11
        assert text.startswith(f"# Figure {figure} of the report"), path
        assert (
            "edsgunn/DistributedReinforcementLearningOnTheEdge" in text and f"configs/report_code/{path.stem}" in text
        )
        assert cfg.run.out == f"results/report_code/{path.stem}.h5", path
        name = cfg.algo.name
        if cfg.env.id in ("CartPole-v1", "Ant-v4"):
            assert cfg.policy.init == "zeros" and cfg.optim.name == "adam" and cfg.optim.l2 == 0.05, path
            assert cfg.env.gamma == {"CartPole-v1": 0.999, "Ant-v4": 0.99}[cfg.env.id], path
            assert name == "es" or cfg.algo.binomial_tail == "shifted", path
        elif name in ("es", "espc"):
            assert cfg.env.gamma == 1.0 and len(cfg.policy.hidden) == 3 and cfg.optim.name == "sgd", path
            assert name == "es" or (cfg.algo.binomial_tail, cfg.algo.zero_std) == ("all_agents", "silent"), path
        else:
            assert cfg.env.max_steps == (0 if cfg.env.id == "FrozenLake-v1" else 201), path
            if cfg.env.id == "FrozenLake-v1":
                assert cfg.env.kwargs == {"is_slippery": False}, path
            if cfg.env.id == "mpidrl/WindyGrid-v0":
                assert cfg.env.kwargs == {"wind": [["down", 0.3], ["left", 0.3]]}, path
            if name == "davia":
                assert cfg.algo.features == "successor", path
            else:  # one exploration rate, and (EBCDQL) the same number as the trigger floor
                assert cfg.algo.explore_start == cfg.algo.explore_end == {"dql": 0.1, "ebcdql": 0.5}[name], path
                assert cfg.algo.greedy_ties == "first", path
                assert name == "dql" or cfg.algo.trigger_floor == "exploration", path
    assert {"fig3_4", "fig3_5", "fig4_2", "fig4_3", "fig4_5", "fig4_6", "fig4_8", "fig4_9", "fig4_11"} <= figures
