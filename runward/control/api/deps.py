"""What route handlers share: typed access to app state and validated path parameters."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import HTTPException, Path, Request, status

from runward.control.api.publisher import Publisher
from runward.core.config import Settings
from runward.core.contracts import deployment_id
from runward.core.store import Store

# Kubernetes names: a namespace is a DNS-1123 label, a Deployment name a DNS-1123 subdomain.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"

Namespace = Annotated[
    str, Path(pattern=DNS_LABEL, max_length=63, description="Kubernetes namespace of the agent's Deployment")
]
Name = Annotated[str, Path(pattern=DNS_SUBDOMAIN, max_length=253, description="name of the agent's Deployment")]


def get_store(request: Request) -> Store:
    return cast(Store, request.app.state.store)


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_publisher(request: Request) -> Publisher:
    return cast(Publisher, request.app.state.publisher)


def find_agent(store: Store, namespace: str, name: str) -> dict[str, Any]:
    """The agent row, or 404 naming the Deployment that Runward has not seen."""
    deployment = deployment_id(namespace, name)
    for agent in store.agents():
        if agent["deployment"] == deployment:
            return agent
    raise HTTPException(
        status.HTTP_404_NOT_FOUND,
        detail=f"agent {deployment} not found: Runward has not observed a Deployment with that name",
    )
