"""Algorithms: one module per family, each a learner side and an agent side with no MPI in them.

- :mod:`~mpidrl.algorithms.es`, :mod:`~mpidrl.algorithms.espc`: ES and its communication schemes;
- :mod:`~mpidrl.algorithms.qlearning`, :mod:`~mpidrl.algorithms.davia`: the value-based family;
- :mod:`~mpidrl.algorithms.nigt`, :mod:`~mpidrl.algorithms.afedpg`, :mod:`~mpidrl.algorithms.lapg`: policy
  gradients (on :mod:`~mpidrl.algorithms.pg`'s estimator);
- :mod:`~mpidrl.algorithms.optim`: the learner's optimizers;
- :mod:`~mpidrl.algorithms.builtin`: each algorithm as a spec, the way :mod:`mpidrl.registry` names it.

Each side implements the interface of the protocol that drives it (:mod:`mpidrl.protocols`); the agent
sides of the ES and value-based families run a rank's agents (and trials run together) as one batch.
"""
