"""Policy proofs: `runward prove` posts the result of running an agent's workload under runc.

The API is where a proof becomes evidence: it names the approver who submitted it as the
prover, signs it with the promotion key (the enforcer accepts no other), publishes it to the
proofs topic for the enforcer, keeps it as an artifact and appends it to the go-live history.
The API does not run the workload (it has no runc); what it checks is that the proof is about
this agent and its latest APD revision, so a proof of something else is refused here already.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status

from runward.control.api import golive
from runward.control.api.auth import Principal, require_approver
from runward.control.api.deps import Name, Namespace, find_agent, get_publisher, get_settings, get_store
from runward.control.api.publisher import Publisher
from runward.control.api.schemas import ErrorBody
from runward.control.api.state import load_state
from runward.core.config import Settings
from runward.core.contracts import PolicyProof
from runward.core.redaction import redact_value
from runward.core.store import Store, history
from runward.core.topics import PROOFS

log = logging.getLogger(__name__)
router = APIRouter(tags=["promotion"])

PROOF_ARTIFACT = "proof"


@router.post(
    "/agents/{namespace}/{name}/proofs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PolicyProof,
    summary="Record a policy proof (runward prove)",
    description="Approver role only. The body is the PolicyProof `runward prove` produced by running the agent's "
    "recorded workload under runc with the candidate enforce-mode seccomp profile and egress allowlist. "
    "The API records the approver as the prover, signs it, publishes it to "
    f"`{PROOFS.name}` (the enforcer emits an enforce-mode bundle only for a passing proof of the latest APD "
    "revision's profile) and appends it to the go-live history. A failed proof is recorded too.",
    responses={
        403: {"model": ErrorBody, "description": "the token is not an approver"},
        404: {"model": ErrorBody, "description": "unknown agent"},
        409: {"model": ErrorBody, "description": "the proof is not of this agent's latest APD revision"},
        503: {"model": ErrorBody, "description": "no signing key, or Kafka did not acknowledge the proof"},
    },
)
def record_proof(
    namespace: Namespace,
    name: Name,
    body: PolicyProof,
    approver: Annotated[Principal, Depends(require_approver)],
    store: Annotated[Store, Depends(get_store)],
    publisher: Annotated[Publisher, Depends(get_publisher)],
    config: Annotated[Settings, Depends(get_settings)],
) -> PolicyProof:
    state = load_state(store, find_agent(store, namespace, name))
    deployment = state.agent["deployment"]
    if body.deployment != deployment:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"the proof is of {body.deployment}, not {deployment}")
    if state.apd is None or body.apd_revision != state.apd.revision:
        latest = state.apd.revision if state.apd else None
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"the proof is of APD revision {body.apd_revision}; the latest is {latest}: "
            f"run `runward prove {deployment}` again",
        )
    # Whatever the body claims, the prover is the person the approver token names; a secret on
    # the workload's command line (a key passed as an argument) is not published or stored.
    command, _ = redact_value(body.command)
    unsigned = body.model_copy(update={"prover": approver.signer, "signature": None, "command": command})
    proof = golive.record_step(
        unsigned,
        PROOFS,
        config=config,
        publisher=publisher,
        store=store,
        kind=history.HistoryKind.PROOF,
        actor=approver.signer,
        reason=unsigned.summary or ("policy proof passed" if unsigned.passed else "policy proof failed"),
        body={
            "passed": unsigned.passed,
            "apd_revision": unsigned.apd_revision,
            "profile_sha256": unsigned.profile_sha256,
            "runtime": unsigned.runtime,
            "refused_syscalls": unsigned.refused_syscalls,
            "refused_destinations": unsigned.refused_destinations,
            "token": approver.name,
        },
        keep=lambda signed: _store_proof(store, signed),
    )
    log.info("%s recorded a %s proof of %s", approver.signer, "passing" if proof.passed else "failing", deployment)
    return proof


def _store_proof(store: Store, proof: PolicyProof) -> None:
    """Store the signed proof as the agent's next numbered proof artifact."""
    previous = store.latest_artifact(proof.deployment, PROOF_ARTIFACT)
    number = int(previous.get("number", 0)) + 1 if previous else 1
    store.put_artifact(
        proof.deployment, PROOF_ARTIFACT, number, proof.ran_at, {**proof.model_dump(mode="json"), "number": number}
    )


def latest_proof(store: Store, deployment: str) -> PolicyProof | None:
    """The newest proof the API recorded or the enforcer carries on its latest bundle (it checked
    the signature of every proof it took): the gate asks both sides about the same proof."""
    found: list[PolicyProof] = []
    stored = store.latest_artifact(deployment, PROOF_ARTIFACT)
    if stored is not None:
        found.append(PolicyProof.model_validate({k: v for k, v in stored.items() if k != "number"}))
    bundle = store.latest_artifact(deployment, "policy")
    if bundle is not None and bundle.get("proof"):
        found.append(PolicyProof.model_validate(bundle["proof"]))
    return max(found, key=lambda p: p.ran_at) if found else None
