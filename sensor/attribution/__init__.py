"""Attribution: cgroup id -> container -> pod -> Deployment and ServiceAccount."""

from sensor.attribution.base import CachingResolver, CompositeResolver, Identity, Resolver

__all__ = ["CachingResolver", "CompositeResolver", "Identity", "Resolver"]
