"""`runward evidence NS/NAME`: the agent's audit evidence (what its enforce-mode policies would
have refused) through the API, newest first with the count per source."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from runward.control.cli.common import out
from runward.control.cli.golive import AgentArg, ApiOpt, TokenOpt, _agent_path, _call


def evidence(
    agent: AgentArg,
    since: Annotated[str | None, typer.Option(metavar="TIME", help="ISO 8601: only evidence seen since")] = None,
    limit: Annotated[int, typer.Option(help="records to list")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> int:
    """Would-be violations of the agent (seccomp, gateway, network), newest first."""
    params: dict[str, Any] = {"limit": limit}
    if since:
        params["since"] = since
    body = _call(api, token, "GET", f"{_agent_path(agent)}/audit-evidence", params=params).json()
    if as_json:
        out.print_json(json.dumps(body))
        return 0
    counts = ", ".join(f"{source} {n}" for source, n in sorted(body["counts"].items())) or "none"
    table = Table(title=f"audit evidence of {body['deployment']}: {body['total']} ({counts})")
    for column in ("time", "source", "action", "pod", "bundle", "reason"):
        table.add_column(column, overflow="fold")
    for e in body["evidence"]:
        bundle = f"r{e['bundle_revision']}" if e.get("bundle_revision") else ""
        table.add_row(e["ts"], e["source"], e["action"], e.get("pod") or "", bundle, e.get("reason") or "")
    out.print(table)
    return 0


def register(app: typer.Typer) -> None:
    app.command(help="an agent's audit evidence: what its enforce-mode policies would have refused")(evidence)
