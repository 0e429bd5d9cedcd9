"""ES with a worker that acts one agent at a time (a per-agent ``SyncWorker``), registered as ``per-agent-es``:
``algo.name = "per_agent_es:per-agent-es"`` (this directory on PYTHONPATH). Its numbers are ES's."""

import dataclasses

from mpidrl import register, registry
from mpidrl.protocols import AgentResult, SyncWorker


class OneAtATime(SyncWorker):
    """ES's agent side called for one agent at a time."""

    def __init__(self, ctx, agents):
        super().__init__(ctx, agents)
        self.es = registry.lookup("es").worker([ctx], agents)

    def receive(self, payload):
        self.es.receive([payload])

    def act(self, round, agent):
        r = self.es.act(round, [agent])
        return AgentResult(r.messages[0], r.reward[0], r.ret[0], r.episodes, r.steps[0])


register("per-agent-es", dataclasses.replace(registry.lookup("es"), worker=OneAtATime), replace=True)
