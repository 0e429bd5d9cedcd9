"""NIGT, the aggregation rules and the simulated clock, in one process."""

import io
import re

import numpy as np
import pytest

from mpidrl import registry, timing
from mpidrl.algorithms.afedpg import AFedPGLearner, AFedPGWorker, lookahead, pack_state
from mpidrl.algorithms.lapg import threshold
from mpidrl.algorithms.nigt import NIGT, MaleniaWorker, RennalaWorker, malenia_done, rennala_done
from mpidrl.comm import Runtime
from mpidrl.config import ConfigError, load
from mpidrl.envs import EnvSpec, make_env, spec_of
from mpidrl.log import Progress
from mpidrl.protocols import Context
from mpidrl.protocols.plans import plan_first
from mpidrl.protocols.roundtrip import plan_round_trips
from mpidrl.run import Experiment
from mpidrl.store import read_run


def test_nigt_converges_on_a_noisy_quadratic():
    rng = np.random.default_rng(0)
    target = rng.standard_normal(20)
    nigt = NIGT(np.zeros(20), eta=0.1, alpha=0.01)
    for _ in range(3000):
        x = nigt.query()
        nigt.step(-(x - target) + 0.5 * rng.standard_normal(20))  # gradient of -||x - target||^2 / 2
    assert np.linalg.norm(nigt.theta - target) < 0.1 * np.linalg.norm(target)
    # every step has length alpha exactly (normalised)
    before = nigt.theta.copy()
    nigt.step(np.ones(20))
    assert np.linalg.norm(nigt.theta - before) == pytest.approx(0.01)


def test_nigt_extrapolates_with_one_minus_eta_over_eta():
    nigt = NIGT(np.zeros(2), eta=0.25, alpha=1.0)
    np.testing.assert_array_equal(nigt.query(), [0, 0])  # first round at theta_0
    nigt.step(np.array([3.0, 4.0]))
    np.testing.assert_allclose(nigt.theta, [0.6, 0.8])
    np.testing.assert_allclose(nigt.query(), [0.6, 0.8] + 3 * np.array([0.6, 0.8]))
    state = pack_state(nigt)  # AFedPG agents rebuild the same point from (t, theta, d)
    np.testing.assert_allclose(lookahead(state, 0.25, 1.0), nigt.query())


def _model(h, kappa=0.0, n=3, **extra):
    cfg = load(None, [f"agents.n={n}", f"time.h={h}", f"time.kappa={kappa}", *extra])
    return timing.TimeModel(cfg.time, n, 0, 0)


def test_rennala_schedule_by_hand():
    # h = 1, 2, 3: completions at 1 (a0), 2 (a0, a1: tie, a0 first), 3 (a0, a2) -> the 4th is a0 at t = 3
    counts, t = plan_first(_model("[1, 2, 3]"), 0, lambda c: rennala_done(c, 4))
    assert counts.tolist() == [3, 1, 0] and t == 3.0
    counts, t = plan_first(_model("[1, 2, 3]"), 0, lambda c: rennala_done(c, 5))
    assert counts.tolist() == [3, 1, 1] and t == 3.0


def test_malenia_schedule_by_hand():
    # needs every agent and harmonic mean >= M / n = 4 / 3: [3, 1, 1] gives 1.29, [4, 1, 1] gives 1.33 at t = 4
    counts, t = plan_first(_model("[1, 2, 3]"), 0, lambda c: malenia_done(c, 4))
    assert counts.tolist() == [4, 1, 1] and t == 4.0
    assert not malenia_done(np.array([10, 10, 0]), 1)


def test_afedpg_schedule_by_hand():
    # round trip kappa = 1: arrivals of a0 at 1.5, 3.5; a1 at 2.5; a2 at 3.5 (tie: a0 first)
    order, counts, t, _ = plan_round_trips(_model("[1, 2, 3]", kappa=1.0), 0, 4)
    assert order.tolist() == [0, 1, 0, 2] and counts.tolist() == [2, 1, 1] and t == 3.5


@pytest.mark.parametrize("where", ["agent", "learner"])
def test_afedpg_lookahead_and_momentum_by_hand(monkeypatch, where):
    cfg = load(None, ['algo.name="afedpg"', "algo.eta=0.5", "algo.alpha=0.1", f'algo.momentum="{where}"'])
    ctx = Context(cfg, 0, spec_of(make_env(cfg.env)))
    worker = AFedPGWorker(ctx, [0])
    worker.begin(0, np.zeros(5))
    points = []

    def gradients(thetas, round, jobs):
        points.extend(thetas.copy())
        return [(np.array([10.0, -10.0]), 0.0, 0.0, 1)] * len(jobs)

    monkeypatch.setattr(worker.sampler, "gradients", gradients)
    # the agent holds t = 2, theta = (1, 2), d = (3, 4): ||d|| = 5, so the last step was alpha d / 5
    worker.receive(0, np.array([2.0, 1.0, 2.0, 3.0, 4.0]))
    sent = worker.compute(0)
    # lookahead: theta + (1 - eta) / eta * alpha d / ||d|| = (1, 2) + 0.02 (3, 4)
    np.testing.assert_allclose(points[0], [1.06, 2.08], rtol=0, atol=1e-15)
    learner = AFedPGLearner(ctx)
    learner.nigt.theta, learner.nigt.d, learner.nigt.t = np.array([5.0, 5.0]), np.array([0.0, 1.0]), 7
    reply = learner.apply(sent)
    if where == "agent":
        # the agent sends d = 0.5 (3, 4) + 0.5 (10, -10) = (6.5, -3); the learner steps along it and keeps it
        np.testing.assert_allclose(sent, [6.5, -3.0], rtol=0, atol=1e-15)
        d = np.array([6.5, -3.0])
    else:
        # the agent sends g; the learner's momentum uses its own d = (0, 1): 0.5 (0, 1) + 0.5 (10, -10)
        np.testing.assert_array_equal(sent, [10.0, -10.0])
        d = np.array([5.0, -4.5])
    np.testing.assert_allclose(reply, [8.0, *(np.array([5.0, 5.0]) + 0.1 * d / np.linalg.norm(d)), *d], atol=1e-15)


def test_afedpg_agents_first_message_is_its_gradient():
    cfg = load(None, ['algo.name="afedpg"'])
    worker = AFedPGWorker(Context(cfg, 0, spec_of(make_env(cfg.env))), [0])
    worker.begin(0, np.array([0.0, 1.0, 2.0, 3.0, 4.0]))  # t = 0: no step yet, no momentum to carry
    worker.sampler.gradients = lambda thetas, round, jobs: [(theta * 0 + 7.0, 0.0, 0.0, 1) for theta in thetas]
    np.testing.assert_array_equal(worker.compute(0), [7.0, 7.0])


def test_afedpg_with_one_agent_is_the_same_wherever_the_momentum_is_formed(tmp_path):
    # one agent always holds the learner's own d, so the two forms compute the same numbers
    metrics = []
    for where in ("agent", "learner"):
        sets = ['algo.name="afedpg"', f'algo.momentum="{where}"', "agents.n=1", "algo.H=30", "algo.M=3"]
        cfg = load(None, [*sets, "algo.M_init=2", "run.rounds=4", "policy.hidden=[4]", 'time.mode="simulated"'])
        out = tmp_path / f"{where}.h5"
        Experiment(
            cfg, spec_of(make_env(cfg.env)), out, Runtime(), progress=Progress(0, 1, 4, stream=io.StringIO())
        ).run()
        metrics.append(read_run(out).metrics)
    assert metrics[0]["uplink_messages"].sum() == 2 + 3 * 3
    for name in ("reward", "return", "steps", "sim_time", "eval_return"):
        np.testing.assert_array_equal(metrics[0][name], metrics[1][name], err_msg=name)


def test_malenia_weighs_every_agent_equally_and_rennala_every_gradient():
    d = 3
    v = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    counts = np.array([5.0, 1.0, 2.0])
    rows = np.concatenate([v * counts[:, None], counts[:, None]], axis=1)  # agent i's gradients all equal v_i
    np.testing.assert_allclose(MaleniaWorker.combine(None, rows), v.mean(axis=0))
    np.testing.assert_allclose(RennalaWorker.combine(None, rows), counts / counts.sum())
    rows[2] = 0  # an agent without gradients still counts in Malenia's 1/n (the rule forbids it anyway)
    np.testing.assert_allclose(MaleniaWorker.combine(None, rows), [1 / 3, 1 / 3, 0])
    assert RennalaWorker.combine(None, np.zeros((2, d + 1))).tolist() == [0, 0, 0]


def test_random_times_are_keyed_and_reproducible():
    model = _model('{dist="exponential", mean="sqrt(i)"}', n=4)
    a = model.compute(3, 2, 5)
    np.testing.assert_array_equal(model.compute(3, 2, 8)[:5], a)  # the k-th draw never moves
    assert not np.array_equal(model.compute(4, 2, 5), a)
    assert np.all(a > 0)
    uni = _model('{dist="uniform", low=1, high=2}', n=2).compute(0, 1, 100)
    assert uni.min() >= 1 and uni.max() <= 2
    logn = _model('{dist="lognormal", mean=2.0, sigma=0.3}', n=1).compute(0, 0, 20000)
    assert logn.mean() == pytest.approx(2.0, rel=0.02)


@pytest.mark.parametrize(
    "value, message",
    [
        ('{dist="gamma", mean=1}', "time.h.dist: expected one of exponential"),
        ('{dist="exponential"}', "time.h.mean: missing"),
        ('{dist="uniform", low=2, high=1}', "time.h: low must be <= high"),
        ('{dist="exponential", mean=1, sd=2}', "time.h.sd: unknown key"),
        ('{dist="exponential", mean="-i"}', "time.h.mean: times must be finite, >= 0"),
    ],
)
def test_bad_time_tables(value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        timing.check(load(None, [f"time.h={value}"]).time, 3)


HOPPER = EnvSpec(11, 0, 0, 3, -np.ones(3), np.ones(3))
"""Hopper-v5's shapes: 11 observations, 3 actions in [-1, 1]"""


def test_time_formulas_use_the_size_of_the_policy_being_learned():
    cfg = load(None, ['algo.name="rennala-nigt"', "policy.hidden=[64, 64]", "agents.n=3"])
    # the paper's policy: 11 -> 64 -> 64 -> 3 means and 3 pre-stds
    d = registry.lookup(cfg.algo.name).policy_size(cfg, HOPPER)
    assert d == (11 * 64 + 64) + (64 * 64 + 64) + (64 * 6 + 6) == 5318
    es = load(None, ['algo.name="es"', "policy.hidden=[64, 64]"])
    assert registry.lookup(es.algo.name).policy_size(es, HOPPER) == 5318 - (
        64 * 3 + 3
    )  # a deterministic MLP: means only
    kappa = timing.per_agent("sqrt(i) * d ** 0.25", 3, "time.kappa", d)
    np.testing.assert_allclose(kappa, np.sqrt([1, 2, 3]) * 5318**0.25)
    assert kappa[0] == pytest.approx(8.5396, abs=1e-4)
    model = timing.TimeModel(load(None, ['time.kappa="sqrt(i) * d ** 0.25"', "agents.n=3"]).time, 3, d=d)
    assert model.allreduce(0) == pytest.approx(kappa[2])
    table = timing.TimeModel(load(None, ['time.h={dist="exponential", mean="d / 5318"}']).time, 3, d=d)
    assert table.compute(0, 1, 20000).mean() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize(
    "formula, d, message",
    [
        ("sqrt(i) * D", 5318, "time.kappa: unknown name 'D' in 'sqrt(i) * D'; use i (1-based agent), n (agents), d"),
        ("sqrt(i) * d ** 0.25", None, "time.kappa: 'sqrt(i) * d ** 0.25' uses d, the policy size, which is not known"),
        ("sqrt(100 - d)", 5318, "time.kappa: formula 'sqrt(100 - d)' fails"),
    ],
)
def test_bad_formulas_of_d(formula, d, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        timing.check(load(None, [f'time.kappa="{formula}"']).time, 3, d)


def test_nigt_params_are_checked():
    with pytest.raises(ConfigError, match="algo.eta: must be in"):
        load(None, ['algo.name="rennala-nigt"', "algo.eta=0"])
    with pytest.raises(ConfigError, match=r"algo.M: must be in \[1, 10\^7\]"):
        load(None, ['algo.name="malenia-nigt"', "algo.M=0"])
    with pytest.raises(ConfigError, match="time.delay_scale: must be >= 0"):
        load(None, ["time.delay_scale=-1"])


def test_lapg_threshold():
    hist = [np.zeros(2), np.array([1.0, 0]), np.array([1.0, 2.0])]
    # (xi / D) (||(0, 2)||^2 + ||(1, 0)||^2) / (alpha^2 n^2) with D = 2, xi = 1, alpha = 0.5, n = 2
    assert threshold(hist, 0.5, 2, 1.0, 2) == pytest.approx(0.5 * 5 / 1.0)
    assert threshold(hist[:1], 0.5, 2, 1.0, 2) == 0.0
