"""`runward demo`'s last section: local enforcement, observe → audit → enforce with a live agent on
this machine, printed as it happens (the proof table, the audit evidence, the refusals).

Why a second, short-lived stack: the demo's own stack learns over the autonomy tiers' windows
(days), which the bundled scenario's event times need; this one learns for LOCAL_WINDOW_S and
soaks for LOCAL_SOAK_S so the whole path fits in about a minute. The steps are
runward.control.lifecycle's, the same the e2e test (tests/e2e/test_observe_audit_enforce.py)
asserts on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text

from runward.control.cli.common import err, out

LOCAL_WINDOW_S = 10
LOCAL_SOAK_S = 4
AGENT = "agents/local-agent"
SERVICE_ACCOUNT = "local-agent"
WAIVERS = {
    "aibom_reviewed": "a local demo agent: nothing was declared for it (`runward declare`)",
    "reconciliation_reviewed": "a local demo agent: no Kubernetes RBAC or cloud grants to reconcile",
}


def _missing(with_sensor: bool) -> str | None:
    from runward.control.lifecycle import local_enforcement_missing

    if not with_sensor:
        return "--no-sensor was given (the agent's APD is learnt by the eBPF sensor)"
    missing = local_enforcement_missing()
    if missing:
        return missing
    try:
        from sensor.cli import sensor_unavailable_reason
    except ImportError:
        return "the sensor package is not installed"
    reason = sensor_unavailable_reason()
    return f"the eBPF sensor cannot run here: {reason}" if reason else None


def show_local_enforcement(home: Path, with_sensor: bool) -> None:
    """Run and print the local enforcement section; one line instead when this machine cannot."""
    from runward.control.lifecycle import Lifecycle, local_agent, local_stack
    from runward.control.supervisor import StartError

    out.print()
    out.print(Text.assemble(("LOCAL ENFORCEMENT", "bold"), "  observe → audit → enforce, a live agent on this machine"))
    missing = _missing(with_sensor)
    if missing:
        out.print(f"  skipped: {missing}")
        return
    started = time.monotonic()
    where = home / "local-enforcement"
    out.print(f"  starting a second Runward (observation window {LOCAL_WINDOW_S} s, audit soak {LOCAL_SOAK_S} s)")
    try:
        with local_stack(where, LOCAL_WINDOW_S, LOCAL_SOAK_S, quiet=True) as stack, local_agent(where) as agent:
            life = Lifecycle(agent, AGENT, SERVICE_ACCOUNT, stack.api, stack.approver, stack.viewer, quiet=True)
            _walk(life)
    except (TimeoutError, StartError, AssertionError, OSError) as exc:
        err.print(f"  local enforcement stopped: {exc} (logs in {where / 'logs'})")
        return
    out.print(f"  observe → audit → enforce took {time.monotonic() - started:.0f} s")


def _step(text: str) -> None:
    out.print(Text.assemble(("  ▸ ", "bold"), text))


def _check(ok: bool, what: str, detail: Any) -> None:
    if not ok:
        raise AssertionError(f"{what}: {detail}")


def _walk(life: Any) -> None:
    agent = life.agent
    cmd = f"python3 agent.py {agent.host} {agent.port}"
    _step(f"observe: runward run --deployment {AGENT} --service-account {SERVICE_ACCOUNT} -- {cmd}")
    first = time.monotonic()
    for _ in range(2):
        _check(life.observe().code == 0, "runward run", "the agent failed")
    time.sleep(max(0.0, first + LOCAL_WINDOW_S + 1 - time.monotonic()))
    _check(life.observe().code == 0, "runward run", "the agent failed")
    apd = life.wait(
        "a complete APD", lambda: (a := life.latest("/apd")) and a["window_status"] == "complete" and a, timeout=45
    )
    time.sleep(2)  # the profiler's coalesced flush: prove the revision that stays
    apd = life.latest("/apd") or apd
    b = apd["behaviours"]
    out.print(
        f"    APD revision {apd['revision']} complete (learnt by the eBPF sensor): "
        f"exec {', '.join(x.removeprefix('exec:') for x in b.get('exec', []))}; "
        f"egress {', '.join(x.removeprefix('egress:') for x in b.get('egress', []))}; "
        f"{len(b.get('syscalls', []))} syscalls"
    )

    _step(f"prove: runward prove {AGENT} (the recorded workload under runc, its enforce profile, nftables)")
    proved = life.prove()
    out.print(proved.out.rstrip())
    _check(proved.code == 0, "runward prove", proved.err)

    _step(f"audit: runward promote {AGENT} --to audit")
    _check(life.promote("audit", "window complete, proof passed").status_code == 202, "promote to audit", "refused")
    life.bundle(lambda x: x["mode"] == "audit", "no audit bundle")
    _enforced(life, "normal", expect=0)
    _enforced(life, "listen", expect=0)
    life.wait("the would-be violation", lambda: [e for e in life.audit_evidence() if e["action"] == "listen"], 30)
    _enforced(life, "newdest", expect=0)
    life.wait("the would-be egress", lambda: [e for e in life.audit_evidence() if e["source"] == "network"], 30)
    shown = life.evidence()  # `runward evidence` reads the same API; its table is wide, so a line each here
    _check(shown.code == 0, "runward evidence", shown.err)
    evidence = life.audit_evidence()
    _step(f"runward evidence {AGENT}: {len(evidence)} would-be violation(s), the workload was not stopped")
    for e in reversed(evidence):
        who = f"pod {e['pod']}  ({e['detail'].get('comm')})" if e.get("pod") else "the agent's egress jail"
        out.print(f"    {e['source']:<8} {e['action']:<22} {who}")

    for check, reason in WAIVERS.items():
        life.waive(check, reason)
        out.print(f"    waived {check}: {reason}")
    time.sleep(LOCAL_SOAK_S)
    refused = life.promote("enforce", "soaked")
    _step(f"runward promote {AGENT} --to enforce: refused ({refused.status_code})")
    for reason in refused.json().get("reasons", []):
        out.print(f"    - {reason}")
    _step("the listen and the new destination were ours: step back to observe, audit again, soak clean")
    life.promote("observe", "restart the soak after the red-team run")
    life.bundle(lambda x: x["mode"] == "observe", "no observe bundle")
    life.promote("audit", "soak again")
    life.bundle(lambda x: x["mode"] == "audit", "no audit bundle")
    _enforced(life, "normal", expect=0)
    time.sleep(LOCAL_SOAK_S + 1)
    promoted = life.promote("enforce", "clean soak, proof passed")
    _check(promoted.status_code == 202, "promote to enforce", promoted.text)
    bundle = life.bundle(lambda x: x["mode"] == "enforce", "no enforce bundle")
    _step(f"enforce: runward promote {AGENT} --to enforce: accepted, bundle r{bundle['revision']}")
    _enforced(life, "normal", expect=0)
    for what in ("unshare", "listen", "exec", "newdest"):
        _enforced(life, what, expect=3)


def _enforced(life: Any, what: str, expect: int) -> None:
    step = life.run_enforced(what)
    said = [line.strip() for line in step.out.splitlines() if line.startswith(("BLOCKED", "DONE"))]
    notes = [line.split("runward run --enforce: ", 1)[1] for line in step.err.splitlines() if "refuse" in line]
    label = "normal work" if what == "normal" else f"attack: {what}"
    out.print(f"    runward run --enforce ({label}): exit {step.code}; {'; '.join(said + notes)}")
    _check(step.code == expect, f"runward run --enforce {what}", step.err)
