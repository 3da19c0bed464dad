"""`runward stories`: the SOC's work on attack stories through the API (list, history, acknowledge,
resolve, reopen). The API checks the role (approver for actions) and audits every action; the
CLI only carries the token (`--token` or RUNWARD_API_TOKEN, never echoed)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from runward.control.cli.common import Failure, out
from runward.core.contracts import Resolution

app = typer.Typer(no_args_is_help=True)

ApiOpt = Annotated[
    str | None,
    typer.Option("--api", metavar="URL", envvar="RUNWARD_API_URL", help="the status API (default: this host's)"),
]
TokenOpt = Annotated[
    str,
    typer.Option(
        "--token", metavar="TOKEN", envvar="RUNWARD_API_TOKEN", help="API bearer token (approver for actions)"
    ),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="why; kept in the story's history")]


def _call(api: str | None, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import httpx

    from runward.core.config import Settings

    if api is None:
        config = Settings()
        api = f"http://{config.api_host}:{config.api_port}"
    try:
        response = httpx.request(
            method, f"{api.rstrip('/')}/v1{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=15
        )
    except httpx.HTTPError as exc:
        raise Failure(
            f"cannot reach the Runward API at {api} ({exc}): start it with `runward up` or pass --api"
        ) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:200]
        raise Failure(f"{method} {path}: {response.status_code} {detail}", code=2)
    return response.json()


def _line(story: dict[str, Any]) -> str:
    resolution = f" ({story['resolution']})" if story.get("resolution") else ""
    return (
        f"{story['story_id']}  {story['deployment']}  severity {story['severity']}  {story['status']}  "
        f"{story.get('lifecycle', 'open')}{resolution}  last seen {story['last_seen']}"
    )


@app.command("list", help="recent attack stories, newest first")
def list_stories(
    token: TokenOpt,
    deployment: Annotated[str | None, typer.Option(metavar="NS/NAME", help="one agent")] = None,
    api: ApiOpt = None,
) -> None:
    query = f"?deployment={deployment}" if deployment else ""
    for story in _call(api, token, "GET", f"/attack-stories{query}"):
        out.print(_line(story))


@app.command(help="a story's narrative and its history (who did what, when, why)")
def show(story_id: str, token: TokenOpt, api: ApiOpt = None) -> None:
    story = _call(api, token, "GET", f"/attack-stories/{story_id}")
    out.print(_line(story))
    for line in story["narrative"]:
        out.print(f"  {line}")
    for entry in _call(api, token, "GET", f"/stories/{story_id}/history"):
        resolution = f" {entry['resolution']}" if entry.get("resolution") else ""
        out.print(f"  {entry['at']} {entry['actor']} {entry['action']}{resolution}: {entry['reason']}")


@app.command(help="acknowledge a story: someone is on it")
def acknowledge(story_id: str, reason: ReasonOpt, token: TokenOpt, api: ApiOpt = None) -> None:
    out.print(_line(_call(api, token, "POST", f"/stories/{story_id}/acknowledge", {"reason": reason})))


@app.command(help="resolve a story as true_positive, false_positive or benign")
def resolve(
    story_id: str,
    resolution: Annotated[Resolution, typer.Option(help="what the story turned out to be")],
    reason: ReasonOpt,
    token: TokenOpt,
    api: ApiOpt = None,
) -> None:
    body = {"reason": reason, "resolution": resolution.value}
    out.print(_line(_call(api, token, "POST", f"/stories/{story_id}/resolve", body)))


@app.command(help="reopen a resolved story")
def reopen(story_id: str, reason: ReasonOpt, token: TokenOpt, api: ApiOpt = None) -> None:
    out.print(_line(_call(api, token, "POST", f"/stories/{story_id}/reopen", {"reason": reason})))
