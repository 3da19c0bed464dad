"""The gateway's bundle from the real API (uvicorn, SQLite store): fetched with a viewer token,
none while the agent has no bundle, and a refused token keeps the last bundle (never fails open
to observe from what it had)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from edges.gateway.bundle import PollingBundle, from_api
from edges.gateway.session import REFUSED, AgentIdentity, GatewaySession
from runward.control.api.app import create_app
from runward.control.api.publisher import KafkaPublisher
from runward.core.config import Settings
from runward.core.contracts import EnforcementMode, utcnow
from runward.core.store import Store, upgrade
from tests.gateway.test_bundle_modes import time_bundle
from tests.gateway.test_http_gateway import serving

VIEWER = "view-2d8e1f7a4c9b0e53"


def test_bundle_is_fetched_from_the_api_with_a_viewer_token(tmp_path: Path, kafka_bootstrap: str) -> None:
    db_url = f"sqlite:///{tmp_path}/runward.db"
    upgrade(db_url)
    store = Store(db_url)
    deployment = "agents/fetched"
    store.touch_agent(deployment, None, utcnow() - timedelta(hours=1))
    app = create_app(
        Settings(api_tokens=f"gw:{VIEWER}:viewer", kafka=kafka_bootstrap),
        store=store,
        publisher=KafkaPublisher(kafka_bootstrap, timeout_s=5),
    )
    with serving(app) as api:
        source = PollingBundle(from_api(api, VIEWER, deployment), every_s=3600)
        assert source.current is None  # the agent has no bundle yet: observe
        bundle = time_bundle(deployment, EnforcementMode.ENFORCE)
        store.put_artifact(deployment, "policy", bundle.revision, bundle.created_at, bundle.model_dump(mode="json"))
        source.refresh()
        assert source.current == bundle
        wrong = PollingBundle(from_api(api, "not-a-token", deployment), every_s=3600)
        assert wrong.current is None and wrong.problem is not None and "401" in wrong.problem
        session = GatewaySession(AgentIdentity(deployment), None, server_name="time", bundles=wrong)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_current_time"}}
        refused = session.from_client(call)  # the mode is unknown: refused, not observed
        assert not refused.to_server and refused.to_client[0]["error"]["code"] == REFUSED
        assert "could not be fetched yet" in refused.to_client[0]["error"]["message"]
        source._fetch = from_api(api, "not-a-token", deployment)
        source.refresh()  # 401: logged, the enforce bundle stays
        assert source.current == bundle and source.problem is None
        source.close()
        wrong.close()
