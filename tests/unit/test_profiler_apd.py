from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from runward.core.config import AUTONOMY_WINDOWS, Settings, autonomy_of
from runward.core.contracts import (
    Autonomy,
    ConnectInfo,
    DeploymentSpecInfo,
    Egress,
    EnrichedEvent,
    EventDetail,
    ExecInfo,
    FileOpenInfo,
    FlushInfo,
    K8sApiCall,
    K8sApiInfo,
    LlmCallInfo,
    SourceRef,
    Surface,
    SyscallInfo,
    WindowStatus,
    parse_behaviour,
    parse_endpoint,
)
from services.profiler.apd import ApdState, FoldResult, Policy, fold, observations

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
POLICY = Policy(window_override_s=None, drift_correlation_s=3600)
SRC = SourceRef(topic="runward.events.enriched", partition=0, offset=0)


def _detail(kind: str, behaviour: str | None) -> EventDetail:
    """The detail ingest writes for such an event, from the behaviour's typed fields."""
    typed = parse_behaviour(behaviour) if behaviour else None
    if kind == "exec":
        return ExecInfo(binary=getattr(typed, "binary", "/bin/true"))
    if kind == "file_open":
        return FileOpenInfo(path=getattr(typed, "path", "/"))
    if kind == "connect":
        return ConnectInfo(address="10.0.0.7", port=getattr(typed, "port", 443), dns_name=getattr(typed, "host", None))
    if kind == "chat":
        return LlmCallInfo(kind="chat", operation="chat", provider="openai", request_model="gpt-4o")
    if kind == "deployment_spec":
        return DeploymentSpecInfo()
    return FlushInfo()


def ev(
    at: timedelta,
    category: str | None,
    behaviour: str | None,
    *,
    pod: str = "bot-1",
    surface: Surface = Surface.PROCESS,
    kind: str = "exec",
    detail: EventDetail | None = None,
    **extra: Any,
) -> EnrichedEvent:
    return EnrichedEvent(
        event_id=f"{at}-{behaviour}",
        ts=T0 + at,
        deployment="agents/bot",
        namespace="agents",
        pod=pod,
        surface=surface,
        kind=kind,
        behaviour=behaviour,
        category=category,
        detail=detail or _detail(kind, behaviour),
        source=SRC,
        **extra,
    )


def run(events: list[EnrichedEvent], state: ApdState | None = None) -> tuple[ApdState, list[FoldResult]]:
    results = []
    for event in events:
        # fold copies only what it changes (services/profiler/apd.py `_own`): the state it is given
        # must come out as it went in, or a record that fails would leave half its changes behind.
        before = state.model_dump() if state is not None else None
        result = fold(state, event, POLICY)
        assert (state.model_dump() if state is not None else None) == before, f"fold changed its input on {event}"
        state = result.state
        results.append(result)
    assert state is not None
    return state, results


R1, R2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def spec(at: timedelta, changed: bool, autonomy: str = "low", revision: str = R1) -> EnrichedEvent:
    return ev(
        at,
        None,
        None,
        surface=Surface.DEPLOYMENT,
        kind="deployment_spec",
        detail=DeploymentSpecInfo.model_validate({"autonomy": autonomy, "changed": changed, "revision": revision}),
    )


def test_replicas_and_restarts_fold_into_one_versioned_apd() -> None:
    state, results = run(
        [
            spec(timedelta(0), False),
            ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3", pod="bot-1"),
            ev(timedelta(seconds=2), "exec", "exec:/usr/bin/python3", pod="bot-2"),  # second replica
            ev(timedelta(hours=5), "exec", "exec:/usr/bin/python3", pod="bot-3"),  # restarted pod
            ev(timedelta(hours=5, seconds=1), "exec", "exec:/usr/bin/git", pod="bot-3"),
        ]
    )
    revisions = [r.revision for r in results if r.revision]
    assert [r.revision for r in revisions] == [1, 2, 3, 4]
    assert revisions[0].added == {"exec": ["exec:/usr/bin/python3"]}
    assert [r.added for r in revisions[1:3]] == [{}, {}]  # a new pod is a revision, with nothing new learnt
    assert revisions[3].added == {"exec": ["exec:/usr/bin/git"]}
    assert revisions[3].pods_seen == state.pods_seen == ["bot-1", "bot-2", "bot-3"]
    assert revisions[3].window_ends_at == T0 + timedelta(days=3)  # low autonomy


def test_start_up_bursts_of_files_are_coalesced_into_one_revision() -> None:
    events = [ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3")]
    events += [
        ev(timedelta(seconds=1, milliseconds=i), "file", f"file:/usr/lib/python3/m{i}.py", kind="file_open")
        for i in range(1, 200)
    ]
    state, results = run(events)
    assert [r.revision.revision for r in results if r.revision] == [1]
    assert len(state.pending_added["file"]) == 199
    # The next event after the coalescing interval publishes them all, whatever it is.
    state, results = run([ev(timedelta(seconds=12), "exec", "exec:/usr/bin/python3")], state)
    [revision] = [r.revision for r in results if r.revision]
    assert revision.revision == 2 and len(revision.added["file"]) == 199 and state.pending_added == {}


def test_window_status_learning_then_stable_then_complete() -> None:
    state, results = run([spec(timedelta(0), False), ev(timedelta(seconds=1), "exec", "exec:/bin/a")])
    assert results[-1].revision and results[-1].revision.window_status is WindowStatus.LEARNING
    _, results = run([ev(timedelta(hours=2), "file", "file:/x")], state)
    assert results[-1].revision and results[-1].revision.window_status is WindowStatus.LEARNING
    state = results[-1].state
    _, results = run([ev(timedelta(hours=4), "exec", "exec:/bin/a")], state)  # nothing new for 2 h
    assert results[-1].revision is None
    _, results = run([ev(timedelta(days=3, seconds=1), "exec", "exec:/bin/a")], state)
    assert results[-1].revision and results[-1].revision.window_status is WindowStatus.COMPLETE


def test_deviation_after_window_is_a_signal_not_baseline() -> None:
    state, _ = run([spec(timedelta(0), False), ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3")])
    state, results = run(
        [ev(timedelta(days=4), "exec", "exec:/bin/sh"), ev(timedelta(days=4, seconds=5), "exec", "exec:/bin/sh")], state
    )
    signals = [s for r in results for s in r.signals]
    assert len(signals) == 1, "a repeated deviation is one signal"
    assert signals[0].title == "outside APD baseline: exec:/bin/sh" and not signals[0].deployment_correlated
    assert signals[0].techniques[0].uid == "T1059"
    assert "exec:/bin/sh" not in state.behaviours["exec"]


def test_drift_is_pending_only_in_the_new_revisions_pods_inside_the_window() -> None:
    state, _ = run([spec(timedelta(0), False), ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3", revision=R1)])
    milvus = "egress:milvus:19530/tcp"
    state, results = run(
        [
            spec(timedelta(days=4), True, revision=R2),
            ev(timedelta(days=4, minutes=10), "egress", milvus, surface=Surface.NETWORK, kind="connect", revision=R2),
        ],
        state,
    )
    [signal] = results[-1].signals
    assert signal.deployment_correlated and signal.severity == 1
    assert milvus in state.pending["egress"] and milvus not in state.behaviours.get("egress", [])
    assert state.pending["egress_ip"] == ["10.0.0.7:19530/tcp"], "its address follows it into pending"
    revision = results[-1].revision
    assert revision and milvus in revision.pending["egress"] and milvus not in revision.behaviours.get("egress", [])
    # An old-revision pod shows it too: it was never the rollout's drift.
    _, results = run(
        [ev(timedelta(days=4, minutes=20), "egress", milvus, surface=Surface.NETWORK, kind="connect", revision=R1)],
        state,
    )
    [signal] = results[-1].signals
    assert not signal.deployment_correlated and milvus not in results[-1].state.pending.get("egress", [])
    # Outside the drift window the rollout's pods are no excuse either.
    _, results = run(
        [
            ev(
                timedelta(days=4, hours=2),
                "egress",
                "egress:new:443/tcp",
                surface=Surface.NETWORK,
                kind="connect",
                revision=R2,
            )
        ],
        state,
    )
    assert not results[-1].signals[0].deployment_correlated
    assert "egress:new:443/tcp" not in results[-1].state.pending.get("egress", [])


def test_a_hijack_right_after_a_scale_is_signalled_and_nothing_is_learnt() -> None:
    state, _ = run(
        [spec(timedelta(0), False, revision=R1), ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3", revision=R1)]
    )
    # Scaling 2 -> 3: the same pod template, so ingest reports no change; a new pod of the same revision appears.
    attack = [
        spec(timedelta(days=4), False, revision=R1),
        ev(timedelta(days=4, minutes=1), "exec", "exec:/bin/sh", pod="bot-3", revision=R1),
        ev(
            timedelta(days=4, minutes=2),
            "egress",
            "egress:paste.evil.example:443/tcp",
            pod="bot-3",
            surface=Surface.NETWORK,
            kind="connect",
            revision=R1,
        ),
        ev(
            timedelta(days=4, minutes=3),
            "syscalls",
            "syscall:unshare",
            pod="bot-3",
            kind="syscall",
            detail=SyscallInfo(syscall="unshare"),
            revision=R1,
        ),
    ]
    state, results = run(attack, state)
    signals = [s for r in results for s in r.signals]
    assert len(signals) == 3 and not any(s.deployment_correlated for s in signals)
    assert state.behaviours.get("egress_ip") is None and not state.pending
    assert "exec:/bin/sh" not in state.behaviours["exec"] and "syscalls" not in state.behaviours


def test_identity_and_input_surfaces_are_never_drift() -> None:
    state, _ = run(
        [spec(timedelta(0), False, revision=R1), ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3", revision=R1)]
    )
    state, results = run(
        [
            spec(timedelta(days=4), True, revision=R2),
            ev(
                timedelta(days=4, minutes=1),
                "k8s_api",
                "k8s-api:list core/secrets in agents",
                surface=Surface.IDENTITY,
                kind="k8s_api",
                detail=K8sApiInfo(verb="list", api_group="core", resource="secrets", namespace="agents"),
                revision=R2,
            ),
        ],
        state,
    )
    [signal] = results[-1].signals
    assert not signal.deployment_correlated and not state.pending


def test_sensor_losses_mark_the_apd_partial() -> None:
    state, results = run([spec(timedelta(0), False), ev(timedelta(seconds=1), "exec", "exec:/a", partial=True)])
    assert state.partial and results[-1].revision and results[-1].revision.partial


def test_prompt_injection_is_a_signal_even_while_learning() -> None:
    _, results = run(
        [
            ev(
                timedelta(seconds=1),
                "llm",
                "llm:openai/gpt-4o",
                surface=Surface.INPUT,
                kind="chat",
                flags=["prompt_injection:ignore_instructions:AML.T0051"],
            )
        ]
    )
    [signal] = results[-1].signals
    assert signal.surface is Surface.INPUT and signal.techniques[0].uid == "AML.T0051"


def test_exec_argument_patterns_fold_run_specific_values() -> None:
    state, _ = run(
        [
            ev(
                timedelta(seconds=1),
                "exec",
                "exec:/usr/bin/python3",
                detail=ExecInfo(binary="/usr/bin/python3", argv=["python3", "-m", "agent", "--port", "8080"]),
            ),
            ev(
                timedelta(seconds=2),
                "exec",
                "exec:/usr/bin/python3",
                detail=ExecInfo(binary="/usr/bin/python3", argv=["python3", "/tmp/tmpx81/job.py", "4242"]),
            ),
        ]
    )
    assert state.behaviours["exec_args"] == ["/usr/bin/python3 * *", "/usr/bin/python3 -m agent --port *"]


def test_a_flush_publishes_what_was_coalesced_for_a_quiet_agent() -> None:
    state, _ = run(
        [
            ev(timedelta(seconds=1), "exec", "exec:/a"),
            ev(timedelta(seconds=2), "file", "file:/etc/hosts", kind="file_open"),
        ]
    )
    assert state.pending_added == {"file": ["file:/etc/hosts"]}
    flush = ev(
        timedelta(seconds=2) + timedelta(seconds=10), None, None, pod="", surface=Surface.DEPLOYMENT, kind="flush"
    )
    state, results = run([flush], state)
    assert results[-1].revision is not None and results[-1].revision.added == {"file": ["file:/etc/hosts"]}
    state, results = run([flush], state)
    assert results[-1].revision is None  # nothing pending: a flush learns nothing


def test_the_observation_window_is_cores_rule_for_config_and_profiler() -> None:
    assert POLICY.window(Autonomy.LOW) == timedelta(days=3) == Settings().window_for(Autonomy.LOW)
    assert POLICY.window(Autonomy.HIGH) == AUTONOMY_WINDOWS[Autonomy.HIGH] == timedelta(days=21)
    override = Policy(window_override_s=60, drift_correlation_s=3600)
    assert (
        override.window(Autonomy.HIGH)
        == timedelta(seconds=60)
        == Settings(observation_window_s=60).window_for(Autonomy.HIGH)
    )
    assert autonomy_of("extreme") is Autonomy.HIGH and autonomy_of(None) is Autonomy.HIGH  # unknown: longest window


def test_an_egress_is_observed_with_the_address_it_reached() -> None:
    event = ev(
        timedelta(seconds=1),
        None,
        "egress:api.openai.com:443/tcp",
        surface=Surface.NETWORK,
        kind="connect",
        detail=ConnectInfo(address="162.159.140.245", port=443, dns_name="api.openai.com"),
    )
    found = observations(event)
    assert [(o.category, o.key) for o in found] == [
        ("egress", "egress:api.openai.com:443/tcp"),
        ("egress_ip", "162.159.140.245:443/tcp"),
    ]
    assert found[0].behaviour == Egress(host="api.openai.com", port=443) and found[1].behaviour is None
    assert parse_endpoint(found[1].key) == Egress(host="162.159.140.245", port=443)


@pytest.mark.parametrize(
    ("behaviour", "technique"),
    [
        (K8sApiCall(verb="list", group="core", resource="secrets", scope="agents"), "T1552.007"),
        (K8sApiCall(verb="list", group="core", resource="pods", scope="agents"), "T1613"),
        # Only the core group's secrets are credentials; a CRD named like them is discovery.
        (K8sApiCall(verb="get", group="example.io", resource="secrets", scope="agents"), "T1613"),
    ],
)
def test_k8s_api_deviations_are_mapped_from_the_typed_fields(behaviour: K8sApiCall, technique: str) -> None:
    state, _ = run([spec(timedelta(0), False), ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3")])
    info = K8sApiInfo(verb=behaviour.verb, api_group=behaviour.group, resource=behaviour.resource, namespace="agents")
    late = ev(timedelta(days=4), None, behaviour.key, surface=Surface.IDENTITY, kind="k8s_api", detail=info)
    _, results = run([late], state)
    [signal] = results[-1].signals
    assert signal.behaviour == behaviour and [t.uid for t in signal.techniques] == [technique]
    assert signal.evidence["detail"]["resource"] == behaviour.resource  # the typed detail, as JSON


@pytest.mark.parametrize(
    ("behaviour", "technique", "severity"),
    [
        (
            K8sApiCall(
                verb="create", group="rbac.authorization.k8s.io", resource="clusterrolebindings", scope="cluster"
            ),
            "T1098.006",
            5,
        ),
        (K8sApiCall(verb="create", group="core", resource="pods/exec", scope="agents"), "T1609", 5),
        (K8sApiCall(verb="get", group="core", resource="secrets", scope="agents"), "T1552.007", 4),
        (K8sApiCall(verb="create", group="core", resource="serviceaccounts/token", scope="agents"), "T1528", 5),
    ],
)
def test_identity_techniques_come_from_one_table_and_denied_is_weighted_apart(
    behaviour: K8sApiCall, technique: str, severity: int
) -> None:
    state, _ = run([spec(timedelta(0), False), ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3")])

    def call(at: timedelta, code: int) -> EnrichedEvent:
        info = K8sApiInfo(
            verb=behaviour.verb, api_group=behaviour.group, resource=behaviour.resource, namespace="agents", code=code
        )
        return ev(at, None, behaviour.key, surface=Surface.IDENTITY, kind="k8s_api", detail=info)

    # Refused first, then achieved: two signals, the achieved one weighs more; neither is learnt.
    state, results = run([call(timedelta(days=4), 403), call(timedelta(days=4, seconds=1), 403)], state)
    [attempted] = [s for r in results for s in r.signals]
    assert [t.uid for t in attempted.techniques] == [technique]
    assert attempted.severity == 2 and attempted.evidence["outcome"] == "attempted"
    state, results = run([call(timedelta(days=4, minutes=1), 200)], state)
    [achieved] = results[-1].signals
    assert achieved.severity == severity and achieved.evidence["outcome"] == "achieved"
    assert behaviour.key not in state.behaviours.get("k8s_api", [])


def test_a_refused_call_while_learning_is_not_baseline() -> None:
    behaviour = K8sApiCall(verb="list", group="core", resource="secrets", scope="agents")
    info = K8sApiInfo(verb="list", api_group="core", resource="secrets", namespace="agents", code=403)
    state, results = run(
        [
            spec(timedelta(0), False),
            ev(timedelta(seconds=1), None, behaviour.key, surface=Surface.IDENTITY, kind="k8s_api", detail=info),
        ]
    )
    assert "k8s_api" not in state.behaviours and not results[-1].signals


def test_an_approvers_acceptance_moves_pending_drift_and_a_signalled_deviation_into_the_baseline() -> None:
    from runward.core.contracts import BaselineAcceptInfo

    state, _ = run([spec(timedelta(0), False), ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3", revision=R1)])
    milvus = "egress:milvus:19530/tcp"
    state, _ = run(
        [
            spec(timedelta(days=4), True, revision=R2),
            ev(timedelta(days=4, minutes=10), "egress", milvus, surface=Surface.NETWORK, kind="connect", revision=R2),
            ev(timedelta(days=4, hours=3), "exec", "exec:/usr/bin/git", revision=R2),
        ],
        state,
    )
    assert "exec:/usr/bin/git" in state.deviations_signalled and milvus in state.pending["egress"]
    accepted = BaselineAcceptInfo(story_id="s", approver="bob", reason="ours", behaviours=[milvus, "exec:/usr/bin/git"])
    state, results = run(
        [
            ev(
                timedelta(days=4, hours=4),
                None,
                None,
                surface=Surface.DEPLOYMENT,
                kind="baseline_accept",
                detail=accepted,
            )
        ],
        state,
    )
    revision = results[-1].revision
    assert revision is not None and not revision.pending
    assert milvus in revision.behaviours["egress"] and "10.0.0.7:19530/tcp" in revision.behaviours["egress_ip"]
    assert "exec:/usr/bin/git" in revision.behaviours["exec"] and "exec:/usr/bin/git" not in state.deviations_signalled


def test_a_hijack_right_after_a_rollout_voids_the_drift_it_hid_in() -> None:
    state, _ = run([spec(timedelta(0), False), ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3", revision=R1)])
    paste = "egress:paste.evil.example:443/tcp"
    state, results = run(
        [
            spec(timedelta(days=4), True, revision=R2),
            ev(timedelta(days=4, minutes=5), "egress", paste, surface=Surface.NETWORK, kind="connect", revision=R2),
        ],
        state,
    )
    assert paste in state.pending["egress"]
    secrets = K8sApiCall(verb="list", group="core", resource="secrets", scope="agents")
    info = K8sApiInfo(verb="list", api_group="core", resource="secrets", namespace="agents")
    state, results = run(
        [
            ev(timedelta(days=4, minutes=6), None, secrets.key, surface=Surface.IDENTITY, kind="k8s_api", detail=info),
            ev(timedelta(days=4, minutes=7), "exec", "exec:/bin/sh", revision=R2),
        ],
        state,
    )
    assert not state.pending and state.rollout_revision is None and paste in state.deviations_signalled
    assert not results[-1].signals[0].deployment_correlated, "nothing after it is drift either"
    assert results[0].revision is not None and not results[0].revision.pending


def test_the_apd_names_the_deployment_revision_and_selector_and_a_rollout_publishes_at_once() -> None:
    """The enforcer builds each bundle from a named Deployment revision and selects pods by the
    Deployment's selector: the APD carries both, and a rollout is a revision of its own."""
    selector = {"matchLabels": {"app.kubernetes.io/name": "bot"}}

    def named(at: timedelta, changed: bool, revision: str, pod_hash: str) -> EnrichedEvent:
        detail = {"autonomy": "low", "changed": changed, "revision": revision, "pod_template_hash": pod_hash}
        return ev(
            at,
            None,
            None,
            surface=Surface.DEPLOYMENT,
            kind="deployment_spec",
            detail=DeploymentSpecInfo.model_validate({**detail, "selector": selector}),
        )

    state, results = run(
        [
            named(timedelta(0), False, R1, "6f7c9d8b4"),  # before anything is learnt: no revision of its own
            ev(timedelta(seconds=1), "exec", "exec:/usr/bin/python3"),
            named(timedelta(seconds=2), False, R1, "6f7c9d8b4"),  # the same again: nothing
            named(timedelta(days=4), True, R2, "84b5d9c7f"),  # a rollout, after the window
        ]
    )
    revisions = [r.revision for r in results]
    assert revisions[0] is None and revisions[2] is None
    first, rollout = revisions[1], revisions[3]
    assert first and first.pod_selector == selector
    assert first.deployment_revision and first.deployment_revision.pod_template_hash == "6f7c9d8b4"
    assert rollout and rollout.revision == 2 and rollout.added == {"_flags": ["deployment_revision"]}
    assert rollout.deployment_revision and rollout.deployment_revision.template_hash == R2
    assert rollout.behaviours == first.behaviours  # a rollout learns nothing by itself


def test_a_redelivered_event_is_folded_once_whatever_its_surface() -> None:
    # Kafka delivers at least once (a restart, a rebalance, a producer's retry): a second copy
    # must not count again. Two records of one raw record (ids differ) are two events.
    state, _ = run([ev(timedelta(0), "exec", "exec:/usr/bin/python3")])
    again = ev(timedelta(minutes=1), "exec", "exec:/usr/bin/git")
    first = fold(state, again, POLICY)
    second = fold(first.state, again, POLICY)
    assert second.revision is None and second.signals == [] and second.state == first.state
    sibling = ev(timedelta(minutes=1), "exec", "exec:/usr/bin/curl")  # same raw record, its own id
    assert sibling.source == again.source
    assert "exec:/usr/bin/curl" in fold(first.state, sibling, POLICY).state.behaviours["exec"]
