"""An APD state rebuilt from the agent's latest stored revision.

The embedded broker keeps topics in memory: after it restarts the profiler's changelog is gone
and an existing agent would start over at revision 1 in learning mode (learning what it should
signal, and overwriting stored revisions). The store outlives the broker, so a state the table
does not have is rebuilt from the latest revision there before the agent's next event folds.
"""

from __future__ import annotations

from runward.core.contracts import ApdRevision, WindowStatus
from services.profiler.apd import ApdState, micros


def restore(revision: ApdRevision) -> ApdState:
    """The state that published `revision`. What a revision does not carry is lost on the safe side:
    deviations already signalled are signalled again, coalesced entries not yet published are
    learnt again when seen, and the novelty clock restarts at the revision's time."""
    return ApdState(
        deployment=revision.deployment,
        autonomy=revision.autonomy,
        revision=revision.revision,
        window_started_at=revision.window_started_at,
        behaviours={k: list(v) for k, v in revision.behaviours.items()},
        last_novel_at=revision.created_at if revision.window_status is WindowStatus.LEARNING else None,
        novel_times=[micros(revision.created_at)] * revision.novel_last_hour,
        partial=revision.partial,
        last_deployment_change=revision.last_deployment_change,
        window_complete_announced=revision.window_status is WindowStatus.COMPLETE,
        pods_seen=list(revision.pods_seen),
        deployment_revision=revision.deployment_revision,
        pod_selector=revision.pod_selector,
        last_revision_at=revision.created_at,
    )
