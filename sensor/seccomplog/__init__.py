"""Edge: the kernel log's would-be violations (seccomp SCMP_ACT_LOG, nftables egress drops) as
AuditEvidence on runward.audit-evidence, attributed to the agent."""
