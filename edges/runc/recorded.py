"""The recorded workload of an agent: the `runward run` command line, replayed by `runward prove`.

Kept as a small JSON file under RUNWARD_HOME/workloads/<namespace>/<name>.json, written each
time `runward run` starts the agent (the latest wins: that is the workload that was observed).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from runward.core.contracts.common import deployment_id


@dataclass(frozen=True)
class RecordedWorkload:
    deployment: str
    service_account: str
    command: list[str]
    cwd: str
    recorded_at: str
    mcp: list[str] = field(default_factory=list)  # `--mcp NAME=COMMAND`: the servers behind its gateway


def path_for(home: Path, deployment: str) -> Path:
    namespace, _, name = deployment.partition("/")
    checked = deployment_id(namespace, name)  # refuses anything that is not namespace/name
    namespace, _, name = checked.partition("/")
    return home / "workloads" / namespace / f"{name}.json"


def record(
    home: Path,
    deployment: str,
    service_account: str,
    command: Sequence[str],
    cwd: str | None = None,
    mcp: Sequence[str] = (),
) -> Path:
    """Write the agent's workload (its command resolved to an absolute path, as it ran)."""
    from edges.runc.oci import BundleError, resolve_binary

    argv = list(command)
    # Kept as given when it does not resolve: observing must not depend on it; prove says what is missing.
    if argv:
        with contextlib.suppress(BundleError):
            argv[0] = resolve_binary(argv[0])
    entry = RecordedWorkload(
        deployment=deployment,
        service_account=service_account,
        command=argv,
        cwd=cwd or os.getcwd(),
        recorded_at=datetime.now(UTC).isoformat(),
        mcp=list(mcp),
    )
    path = path_for(home, deployment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(entry), indent=2))
    tmp.chmod(0o600)  # the command line may carry a secret: the replay needs it as it was
    tmp.replace(path)
    return path


def load(home: Path, deployment: str) -> RecordedWorkload | None:
    path = path_for(home, deployment)
    if not path.is_file():
        return None
    try:
        return RecordedWorkload(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a recorded workload ({exc}); run the agent with `runward run` again") from None
