"""Go-live: `runward readiness`, `runward promote`, `runward waive`, `runward history`.

Every command goes through the status API (never the store directly), so the API's
authentication, roles and the promotion gate apply, and decisions are signed by the person
the token names. `runward readiness` exits 0 only when the agent is ready, so a CI/CD
pipeline can gate a rollout on it.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from runward.control.cli.common import Failure, err, out

ApiOpt = Annotated[
    str | None,
    typer.Option("--api", metavar="URL", envvar="RUNWARD_API_URL", help="status API base URL (env RUNWARD_API_URL)"),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", metavar="TOKEN", envvar="RUNWARD_API_TOKEN", help="API bearer token (env RUNWARD_API_TOKEN)"
    ),
]
AgentArg = Annotated[str, typer.Argument(metavar="NS/NAME", help="the agent's Deployment, namespace/name")]

NOT_READY = 1  # the exit status CI/CD gates on
REFUSED = 1


def _agent_path(agent: str) -> str:
    namespace, sep, name = agent.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise Failure(f"agent {agent!r} must be NAMESPACE/NAME, e.g. shop/retriever", code=2)
    return f"/v1/agents/{namespace}/{name}"


def _base_url(api: str | None) -> str:
    if api:
        return api.rstrip("/")
    from runward.core.config import settings

    config = settings()
    return f"http://{config.api_host}:{config.api_port}"


def _call(api: str | None, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    """One API request; a Failure naming what to do for transport and auth errors."""
    import httpx

    if not token:
        raise Failure("no API token: pass --token or set RUNWARD_API_TOKEN (a viewer or approver token)", code=2)
    base = _base_url(api)
    try:
        response = httpx.request(
            method, f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
        )
    except httpx.HTTPError as exc:
        raise Failure(
            f"cannot reach the Runward API at {base} ({type(exc).__name__}): is `runward api` running?"
        ) from None
    if response.status_code in (401, 403, 404, 422, 503):
        raise Failure(f"{method} {path}: {response.status_code} {_detail(response)}", code=2)
    return response


def _detail(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:500]
    return detail if isinstance(detail, str) else json.dumps(detail)


def _checks_table(report: dict[str, Any]) -> Table:
    verdict = "READY" if report["ready"] else "NOT READY"
    table = Table(
        title=f"{report['deployment']}: {verdict} for {report['target']} (mode {report['mode']})",
        show_lines=False,
    )
    for column in ("check", "status", "evidence", "fix"):
        table.add_column(column, overflow="fold")
    for check in report["checks"]:
        table.add_row(check["title"], check["status"].upper(), check["evidence"], check.get("fix") or "")
    return table


def readiness(
    agent: AgentArg,
    target: Annotated[str, typer.Option("--target", help="assess readiness for audit or enforce")] = "enforce",
    output: Annotated[
        str, typer.Option("--format", help="table (default), json, markdown or html (the ticket report)")
    ] = "table",
    out_file: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="write the report here")] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> int:
    """Go-live readiness of an agent: each check, its evidence and fix; exit 0 only when ready."""
    if output not in ("table", "json", "markdown", "html"):
        raise Failure(f"--format {output!r}: choose table, json, markdown or html", code=2)
    path = f"{_agent_path(agent)}/readiness"
    report = _call(api, token, "GET", path, params={"target": target}).json()
    if output in ("markdown", "html"):
        text = _call(api, token, "GET", path, params={"target": target, "format": output}).text
    elif output == "json":
        text = json.dumps(report, indent=2)
    else:
        text = ""
    if out_file is not None:
        out_file.write_text(text or json.dumps(report, indent=2))
        err.print(f"report written to {out_file}")
    elif text:
        out.print(text)
    if output == "table":
        out.print(_checks_table(report))
    return 0 if report["ready"] else NOT_READY


def _decide(
    api: str | None, token: str | None, agent: str, route: str, fields: dict[str, Any], reason: str, refused: str
) -> dict[str, Any] | None:
    """POST a go-live decision (`promotion`, `policy-accept`) with its reason: the signed decision
    the API accepted (202), or None when the gate refused it (409; its reasons are printed)."""
    if not reason.strip():
        raise Failure("--reason must say why (it is kept in the go-live history)", code=2)
    response = _call(api, token, "POST", f"{_agent_path(agent)}/{route}", json={**fields, "reason": reason})
    body: dict[str, Any] = response.json()
    if response.status_code == 409:
        err.print(body.get("detail", refused))
        for line in body.get("reasons", []):
            err.print(f"  - {line}")
        return None
    if response.status_code != 202:
        raise Failure(f"{route.replace('-', ' ')}: unexpected answer {response.status_code} {_detail(response)}")
    return body


def promote(
    agent: AgentArg,
    to: Annotated[str, typer.Option("--to", help="audit or enforce; observe (or audit from enforce) rolls back")],
    reason: Annotated[str, typer.Option("--reason", help="why; signed with your identity in the history")],
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> int:
    """Promote an agent (observe -> audit -> enforce) or roll it back, through the gate."""
    body = _decide(api, token, agent, "promotion", {"mode": to}, reason, "refused by the gate")
    if body is None:
        return REFUSED
    out.print(f"{body['deployment']} -> {body['mode']} accepted, signed by {body['approver']} at {body['ts']}")
    return 0


def accept_policy(
    agent: AgentArg,
    apd_revision: Annotated[int, typer.Option("--apd-revision", help="the latest APD revision, reviewed")],
    reason: Annotated[str, typer.Option("--reason", help="why; signed with your identity in the history")],
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> int:
    """Accept the latest APD revision into an enforced agent's frozen policies (its pending widening)."""
    body = _decide(api, token, agent, "policy-accept", {"apd_revision": apd_revision}, reason, "refused")
    if body is None:
        return REFUSED
    out.print(
        f"{body['deployment']}: APD revision {body['accept_apd_revision']} accepted into the enforced policies, "
        f"signed by {body['approver']} at {body['ts']}"
    )
    return 0


def _until(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Failure(f"--until {value!r} is not a date (YYYY-MM-DD) or ISO time", code=2) from None
    if parsed.tzinfo is None:
        # A bare date lapses at the end of that day, UTC.
        parsed = (
            datetime.combine(parsed.date(), time.max, tzinfo=timezone.utc)
            if len(value) == 10
            else parsed.replace(tzinfo=timezone.utc)
        )
    return parsed.isoformat()


def waive(
    agent: AgentArg,
    check: Annotated[str, typer.Option("--check", help="the readiness check id, e.g. service_account")],
    reason: Annotated[str, typer.Option("--reason", help="why the risk is accepted")],
    until: Annotated[
        str | None, typer.Option("--until", metavar="DATE", help="when the waiver lapses (YYYY-MM-DD or ISO time)")
    ] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="review one item of the check instead of waiving all of it")
    ] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> int:
    """Waive a failing readiness check until a date, or review one item of it (approver)."""
    body = {"check": check, "reason": reason, "until": _until(until), "subject": subject}
    response = _call(api, token, "POST", f"{_agent_path(agent)}/waivers", json=body)
    if response.status_code == 409:
        raise Failure(_detail(response), code=REFUSED)
    if response.status_code != 201:
        raise Failure(f"waiver: unexpected answer {response.status_code} {_detail(response)}")
    w = response.json()
    lapse = f" until {w['until']}" if w["until"] else ""
    out.print(f"{w['kind']} of {w['check']} for {w['deployment']} recorded{lapse}, signed by {w['actor']}")
    return 0


def history(
    deployment: Annotated[
        str | None, typer.Option("--deployment", metavar="NS/NAME", help="only this agent's entries")
    ] = None,
    export: Annotated[
        Path | None, typer.Option("--export", metavar="FILE", help="write the whole chain as JSON lines")
    ] = None,
    verify: Annotated[bool, typer.Option("--verify", help="verify the hash chain; exit 1 if it is broken")] = False,
    limit: Annotated[int, typer.Option(help="entries to list")] = 100,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> int:
    """The go-live history (promotions, waivers, reviews, resolutions); export or verify its chain."""
    if export is not None:
        export.write_text(_call(api, token, "GET", "/v1/history/export").text)
        err.print(f"history exported to {export}")
    if verify:
        result = _call(api, token, "GET", "/v1/history/verify").json()
        if not result["ok"]:
            where = f" at entry {result['broken_at']}" if result["broken_at"] is not None else ""
            err.print(f"history chain BROKEN{where}: {result['problem']}")
            return 1
        out.print(f"history chain intact: {result['entries']} entries, head {result['head']}")
        return 0
    if export is not None:
        return 0
    params: dict[str, Any] = {"limit": limit}
    if deployment:
        params["deployment"] = deployment
    entries = _call(api, token, "GET", "/v1/history", params=params).json()
    table = Table(title="go-live history")
    for column in ("seq", "time", "agent", "kind", "actor", "reason", "detail"):
        table.add_column(column, overflow="fold")
    for e in entries:
        detail = ", ".join(f"{k}={v}" for k, v in e["body"].items() if k not in ("readiness",) and v is not None)
        table.add_row(str(e["seq"]), e["ts"], e["deployment"], e["kind"], e["actor"], e["reason"], detail)
    out.print(table)
    return 0


def show_readiness(store: Any, soak_s: int) -> None:
    """Print the readiness table of every agent in the store (the demo's closing view)."""
    from runward.control.api import golive

    for agent in store.agents():
        report = golive.assess(store, agent, soak_s)
        out.print(_checks_table(report.as_dict()))


def register(app: typer.Typer) -> None:
    app.command(help="go-live readiness of an agent; exit 0 only when ready (gate a rollout on it)")(readiness)
    app.command(help="promote an agent to audit or enforce, or roll it back, through the gate")(promote)
    app.command("accept-policy", help="accept the latest APD revision into an enforced agent's frozen policies")(
        accept_policy
    )
    app.command(help="waive a failing readiness check until a date, or review one item of it")(waive)
    app.command(help="the go-live history: list, --export as JSON lines, --verify the hash chain")(history)
