"""Hypothesis strategies for every intake body and every contract payload.

Each strategy mixes three kinds of input: arbitrary bytes, arbitrary JSON, and documents shaped
like the real thing (the field names Falco, Tetragon, OTLP and the audit webhook use) with
hostile values in every field, which is what reaches the translators' deep paths.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from runward.core.topics import Topic

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "0", "-1", "1e400", "NaN", "2026-11-30T10:00:00Z", "2020-01-01T00:00:00", "::1", "\ud800"])
)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _field(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field that is usually plausible and sometimes anything at all."""
    return st.one_of(plausible, plausible, json_values)


_times = st.one_of(
    st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)).map(lambda d: d.isoformat()),
    st.sampled_from(["2026-11-30T10:00:00.123456789Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.floats(allow_nan=True, allow_infinity=True),
)
_ips = st.one_of(st.ip_addresses().map(str), st.sampled_from(["exfil.example", "[::1]", "999.1.1.1", ""]))
_ports = st.one_of(st.integers(min_value=-5, max_value=70000), st.sampled_from(["443", "http", 1e30]))
_paths = st.one_of(st.sampled_from(["/etc/passwd", "/proc/1/status", "", "/" * 300]), st.text(max_size=30))
_pods = st.one_of(st.sampled_from(["bot-7d4b9c5f6-x2x7q", "Bad_Pod", ""]), st.text(max_size=20))


def _falco_fields() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"evt.type": _field(st.sampled_from(["openat", "execve", "connect", "accept4", "open", "ptrace"]))},
        optional={
            "fd.name": _field(st.one_of(_paths, st.sampled_from(["10.0.0.1:5555->1.2.3.4:443", "[::1]:1->[x]:2"]))),
            "evt.arg.flags": _field(st.sampled_from(["O_RDONLY|O_CLOEXEC", "4242(O_WRONLY)", 577])),
            "proc.exepath": _field(_paths),
            "proc.name": _field(st.text(max_size=20)),
            "proc.cmdline": _field(st.text(max_size=60)),
            "proc.pid": _field(st.integers(min_value=-(2**70), max_value=2**70)),
            "proc.ppid": _field(st.integers()),
            "proc.pname": _field(st.text(max_size=15)),
            "fd.sip": _field(_ips),
            "fd.sport": _field(_ports),
            "fd.rip": _field(_ips),
            "fd.rport": _field(_ports),
            "fd.l4proto": _field(st.sampled_from(["tcp", "udp", "UDP"])),
            "fd.sip.name": _field(st.text(max_size=30)),
            "k8s.ns.name": _field(st.sampled_from(["agents", "Agents", "", "a" * 70])),
            "k8s.pod.name": _field(_pods),
            "k8s.pod.uid": _field(st.uuids().map(str)),
            "k8smeta.deployment.name": _field(st.sampled_from(["bot", "Bad Name", ""])),
            "container.id": _field(st.sampled_from(["host", "9c1e7f0b2a44", ""])),
            "evt.time": _field(_times),
        },
    )


falco_alerts = st.fixed_dictionaries(
    {"output_fields": _field(_falco_fields())},
    optional={
        "time": _field(_times),
        "rule": _field(st.text(max_size=20)),
        "source": _field(st.sampled_from(["syscall", "k8s_audit"])),
        "hostname": _field(st.text(max_size=20)),
        "priority": _field(st.sampled_from(["Warning", "Critical"])),
        "output": st.text(max_size=40),
    },
)

_process = st.fixed_dictionaries(
    {},
    optional={
        "binary": _field(_paths),
        "arguments": _field(st.text(max_size=60)),
        "pid": _field(st.integers(min_value=-(2**70), max_value=2**70)),
        "pod": _field(
            st.fixed_dictionaries(
                {},
                optional={
                    "namespace": _field(st.sampled_from(["agents", "Bad", ""])),
                    "name": _field(_pods),
                    "workload": _field(st.sampled_from(["bot", "Bad Name"])),
                    "workload_kind": _field(st.sampled_from(["Deployment", "StatefulSet", ""])),
                    "container": _field(st.fixed_dictionaries({}, optional={"id": _field(st.text(max_size=40))})),
                },
            )
        ),
    },
)
_kprobe_arg = st.one_of(
    st.fixed_dictionaries({"file_arg": _field(st.fixed_dictionaries({}, optional={"path": _field(_paths)}))}),
    st.fixed_dictionaries({"path_arg": _field(st.fixed_dictionaries({}, optional={"path": _field(_paths)}))}),
    st.fixed_dictionaries({"int_arg": _field(st.integers(min_value=-(2**70), max_value=2**70))}),
    st.fixed_dictionaries(
        {
            "sock_arg": _field(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "daddr": _field(_ips),
                        "dport": _field(_ports),
                        "family": _field(st.sampled_from(["AF_INET", "AF_INET6"])),
                        "protocol": _field(st.sampled_from(["IPPROTO_TCP", "IPPROTO_UDP"])),
                    },
                )
            )
        }
    ),
    st.fixed_dictionaries({"capability_arg": _field(st.fixed_dictionaries({}, optional={"name": _field(st.text())}))}),
    json_values,
)
_tetragon_body = st.fixed_dictionaries(
    {},
    optional={
        "process": _field(_process),
        "parent": _field(_process),
        "status": _field(st.integers(min_value=-(2**70), max_value=2**70)),
        "function_name": _field(
            st.sampled_from(["security_file_permission", "tcp_connect", "cap_capable", "udp_sendmsg", "x"])
        ),
        "args": _field(st.lists(_kprobe_arg, max_size=3)),
    },
)
tetragon_events = st.builds(
    lambda kind, body, extra: {kind: body, **extra},
    st.sampled_from(["process_exec", "process_exit", "process_kprobe", "process_loader"]),
    _field(_tetragon_body),
    st.fixed_dictionaries({}, optional={"time": _field(_times), "node_name": _field(st.text(max_size=20))}),
)

_audit_event = st.fixed_dictionaries(
    {
        "apiVersion": _field(st.just("audit.k8s.io/v1")),
        "kind": _field(st.just("Event")),
    },
    optional={
        "auditID": _field(st.uuids().map(str)),
        "stage": _field(st.sampled_from(["ResponseComplete", "RequestReceived"])),
        "verb": _field(st.sampled_from(["get", "list", "create"])),
        "user": _field(st.fixed_dictionaries({}, optional={"username": _field(st.text(max_size=40))})),
        "objectRef": _field(
            st.dictionaries(st.sampled_from(["resource", "namespace", "name", "apiGroup"]), json_values)
        ),
        "requestObject": _field(
            st.fixed_dictionaries(
                {"kind": _field(st.sampled_from(["Secret", "SecretList", "Pod"]))},
                optional={
                    "data": _field(st.dictionaries(st.text(max_size=8), st.text(max_size=20))),
                    "items": _field(st.lists(json_values, max_size=3)),
                },
            )
        ),
        "responseStatus": _field(st.fixed_dictionaries({}, optional={"code": _field(st.integers())})),
        "requestReceivedTimestamp": _field(_times),
    },
)
audit_documents = st.one_of(
    _audit_event,
    st.fixed_dictionaries({"kind": st.just("EventList"), "items": _field(st.lists(_audit_event, max_size=3))}),
)

_any_value = st.deferred(
    lambda: st.one_of(
        st.fixed_dictionaries({"stringValue": st.text(max_size=60)}),
        st.fixed_dictionaries({"intValue": st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str)}),
        st.fixed_dictionaries({"boolValue": st.booleans()}),
        st.fixed_dictionaries({"doubleValue": st.floats(allow_nan=False, allow_infinity=False)}),
        st.fixed_dictionaries({"arrayValue": st.fixed_dictionaries({"values": st.lists(_any_value, max_size=2)})}),
    )
)
_otlp_keys = st.sampled_from(
    [
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.provider.name",
        "gen_ai.tool.name",
        "gen_ai.tool.call.arguments",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.usage.input_tokens",
        "mcp.method.name",
        "jsonrpc.request.id",
        "server.address",
        "k8s.namespace.name",
        "k8s.deployment.name",
        "k8s.pod.name",
        "service.name",
        "x",
    ]
)
_attributes = st.lists(st.fixed_dictionaries({"key": _otlp_keys, "value": _any_value}), max_size=6)
_messages_json = st.one_of(
    json_values.map(json.dumps),
    st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant", "tool"])},
            optional={"parts": st.lists(st.dictionaries(st.sampled_from(["type", "content", "name"]), json_values))},
        ),
        max_size=2,
    ).map(json.dumps),
)
_span = st.fixed_dictionaries(
    {
        "traceId": st.one_of(st.binary(min_size=16, max_size=16).map(bytes.hex), st.text(max_size=4)),
        "spanId": st.one_of(st.binary(min_size=8, max_size=8).map(bytes.hex), st.just("")),
        "name": st.text(max_size=20),
        "kind": st.integers(min_value=0, max_value=5),
        "startTimeUnixNano": st.integers(min_value=0, max_value=2**64 - 1).map(str),
        "attributes": st.one_of(
            _attributes,
            st.builds(
                lambda a, m: [*a, {"key": "gen_ai.input.messages", "value": {"stringValue": m}}],
                _attributes,
                _messages_json,
            ),
        ),
    }
)
otlp_documents = st.fixed_dictionaries(
    {
        "resourceSpans": st.lists(
            st.fixed_dictionaries(
                {
                    "resource": st.fixed_dictionaries({"attributes": _attributes}),
                    "scopeSpans": st.lists(st.fixed_dictionaries({"spans": st.lists(_span, max_size=3)}), max_size=2),
                }
            ),
            max_size=2,
        )
    }
)


def _to_protobuf(document: dict[str, Any]) -> bytes:
    from edges.intake.otlp import _hex_ids_to_base64

    try:
        message = json_format.ParseDict(_hex_ids_to_base64(document), ExportTraceServiceRequest())
    except json_format.ParseError:
        return json.dumps(document).encode()  # still a body worth sending
    return message.SerializeToString()


def bodies(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """HTTP bodies: JSON of the shaped documents (single, array, JSON lines), JSON of anything,
    and raw bytes."""
    return st.one_of(
        documents.map(lambda d: json.dumps(d).encode()),
        st.lists(documents, max_size=4).map(lambda ds: json.dumps(ds).encode()),
        st.lists(documents, min_size=1, max_size=3).map(lambda ds: "\n".join(json.dumps(d) for d in ds).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
    )


otlp_protobuf_bodies = st.one_of(otlp_documents.map(_to_protobuf), st.binary(max_size=300))


def payloads_for(topic: Topic) -> st.SearchStrategy[bytes]:
    """Kafka values for a topic: anything, or an object with the contract's field names."""
    fields = sorted(_model_fields(topic))
    shaped = st.dictionaries(st.sampled_from(fields or ["x"]), json_values, max_size=len(fields) or 1)
    with_version = st.builds(lambda d, v: {**d, "schema_version": v}, shaped, json_values)
    return st.one_of(
        st.binary(max_size=100),
        json_values.map(lambda v: json.dumps(v).encode()),
        shaped.map(lambda d: json.dumps(d).encode()),
        with_version.map(lambda d: json.dumps(d).encode()),
    )


def _model_fields(topic: Topic) -> set[str]:
    names: set[str] = set()
    schema = topic.adapter.json_schema()
    for definition in [schema, *schema.get("$defs", {}).values()]:
        names.update(definition.get("properties", {}))
    return names
