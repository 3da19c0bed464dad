"""ServiceAccount posture, for the reconciliation job: the rules live with the enforcer.

The promotion gate holds an agent that shares its ServiceAccount, so the enforcer owns the
pure posture rules (`services.enforcer.posture`, no I/O); the job and the API use them from there.
"""

from services.enforcer.posture import assess_service_accounts, deployments_from_agents, service_account_of

__all__ = ["assess_service_accounts", "deployments_from_agents", "service_account_of"]
