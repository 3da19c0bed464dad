"""The agent's policy bundle as the tool gateway applies it: its tool policy at its mode.

The enforcer builds the bundle's tool policy from the APD (the tools the agent called while
observed, with the argument rules the profiler learnt) and stamps it with the mode the platform
team promoted the agent to. The gateway judges every tools/call against it:

- observe: the call goes through; a would-be refusal is noted on the call's record;
- audit: the call goes through; a would-be refusal is noted and published as `AuditEvidence`
  (source gateway) on runward.audit-evidence, which the audit soak reads;
- enforce: the call is refused with a JSON-RPC error and recorded as refused (never learnt into
  the APD), and tools/list answers hide the tools the bundle does not allow.

No bundle (none fetched yet, the agent is new) is observe: the gateway records and never refuses
on its account. A bundle is fetched from the API (`GET /v1/agents/{ns}/{name}/policies` with a
viewer token) or read from runward.policies, and refreshed periodically; a failed refresh keeps
the last bundle (never drops back to observe from enforce because the API blinked). A gateway
told to apply a bundle that could not yet learn whether there is one (the first fetch failed)
refuses tool calls until it can: not knowing the mode is not observe, and nothing fails open.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from runward.core.contracts import EnforcementMode, PolicyBundle
from runward.core.tool_arguments import call_violations

log = logging.getLogger(__name__)
REFRESH_S = 30.0
UNKNOWN_RETRY_S = 3.0


@dataclass(frozen=True)
class BundleDecision:
    """What the bundle says of one call: `allowed` False is a (would-be) refusal at `mode`."""

    allowed: bool
    reason: str
    mode: EnforcementMode
    revision: int | None


def judge(bundle: PolicyBundle | None, server: str, tool: str, arguments: dict[str, object] | None) -> BundleDecision:
    """The bundle's verdict on `server/tool` called with `arguments` (pure)."""
    if bundle is None:
        return BundleDecision(True, "no policy bundle for the agent yet: observe", EnforcementMode.OBSERVE, None)
    if bundle.tool_policy is None:
        return BundleDecision(
            True, f"policy bundle r{bundle.revision} has no tool policy: observe", EnforcementMode.OBSERVE, None
        )
    name = f"{server}/{tool}"
    rule = next((r for r in bundle.tool_policy.tools if r.tool == name), None)
    if rule is None:
        return BundleDecision(
            False,
            f"tool {name} is not in the agent's APD (policy bundle r{bundle.revision}, APD r{bundle.apd_revision})",
            bundle.mode,
            bundle.revision,
        )
    found = call_violations(rule, arguments)
    if found:
        return BundleDecision(
            False,
            f"arguments of {name} outside the agent's APD (policy bundle r{bundle.revision}): " + "; ".join(found),
            bundle.mode,
            bundle.revision,
        )
    return BundleDecision(True, f"tool {name} is in the agent's APD", bundle.mode, bundle.revision)


def hidden_tools(bundle: PolicyBundle | None, server: str, tools: list[str]) -> set[str]:
    """The tools an enforce-mode bundle refuses whatever the arguments: hidden from tools/list."""
    if bundle is None or bundle.tool_policy is None or bundle.mode is not EnforcementMode.ENFORCE:
        return set()
    allowed = {r.tool for r in bundle.tool_policy.tools}
    return {t for t in tools if f"{server}/{t}" not in allowed}


class BundleSource(Protocol):
    """Where the gateway gets the agent's latest bundle; `current` never blocks."""

    @property
    def current(self) -> PolicyBundle | None: ...

    @property
    def problem(self) -> str | None:
        """Why the bundle is unknown (no fetch succeeded yet), else None."""
        ...


class FixedBundle:
    """A bundle held in memory (tests, a bundle file given on the command line)."""

    def __init__(self, bundle: PolicyBundle | None) -> None:
        self.bundle = bundle

    @property
    def current(self) -> PolicyBundle | None:
        return self.bundle

    @property
    def problem(self) -> str | None:
        return None


class PollingBundle:
    """Fetches the bundle once at start, then every `every_s` seconds in a daemon thread.

    A fetch that fails keeps the last bundle; one that finds none (404: no bundle yet) keeps the
    last too, since bundles are never deleted and the store may just be catching up.
    """

    def __init__(self, fetch: Callable[[], PolicyBundle | None], every_s: float = REFRESH_S) -> None:
        self._fetch, self._every = fetch, every_s
        self._bundle: PolicyBundle | None = None
        self._problem: str | None = None
        self._known = False
        self._stop = threading.Event()
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="runward-gateway-bundle", daemon=True)
        self._thread.start()

    @property
    def current(self) -> PolicyBundle | None:
        return self._bundle

    @property
    def problem(self) -> str | None:
        return None if self._known else self._problem

    def refresh(self) -> None:
        try:
            bundle = self._fetch()
        except Exception as exc:  # noqa: BLE001 - any failure keeps the last bundle; the log says why
            log.warning("policy bundle refresh failed, keeping revision %s: %s", self._revision(), exc)
            self._problem = f"the agent's policy bundle could not be fetched yet ({exc})"
            return
        self._known = True
        if bundle is not None and (self._bundle is None or bundle.revision >= self._bundle.revision):
            self._bundle = bundle

    def _revision(self) -> int | None:
        return self._bundle.revision if self._bundle else None

    def _run(self) -> None:
        # While the bundle is unknown calls are refused: retry soon, not at the refresh period.
        while not self._stop.wait(self._every if self._known else min(self._every, UNKNOWN_RETRY_S)):
            self.refresh()

    def close(self) -> None:
        self._stop.set()


def from_api(api: str, token: str, deployment: str, timeout_s: float = 10.0) -> Callable[[], PolicyBundle | None]:
    """A fetch of the agent's latest bundle from the Runward API (viewer token)."""
    namespace, _, name = deployment.partition("/")
    url = f"{api.rstrip('/')}/v1/agents/{namespace}/{name}/policies"

    def fetch() -> PolicyBundle | None:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - configured URL
                return PolicyBundle.model_validate(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise RuntimeError(f"GET {url} answered {exc.code}: {exc.reason}") from None

    return fetch


def from_topic(kafka: str, deployment: str, timeout_s: float = 15.0) -> Callable[[], PolicyBundle | None]:
    """A fetch of the agent's latest bundle from runward.policies (read from its start)."""
    from runward.core.kafka import read_topic
    from runward.core.topics import POLICIES

    def fetch() -> PolicyBundle | None:
        read = read_topic(
            kafka,
            POLICIES,
            reader="mcp-gateway-bundle",
            match=lambda r: r.key == deployment and r.record.deployment == deployment,
            idle_s=2.0,
            timeout_s=timeout_s,
            dead_letter=False,
        )
        bundles = [r.record for r in read.records if isinstance(r.record, PolicyBundle)]
        return max(bundles, key=lambda b: b.revision) if bundles else None

    return fetch
