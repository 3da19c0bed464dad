"""Edge: run an agent's recorded workload under runc with its candidate enforce-mode policies.

`prove()` is the policy proof of the Enforce pillar: the workload runs twice in a network
namespace whose egress is an nftables allowlist, once with the seccomp profile's default action
turned into `SCMP_ACT_LOG` (every syscall the profile would refuse is reported by the kernel as an
audit record, type 1326, read from the audit multicast group and attributed to the run by its
own audit login id), once with the profile as it would be enforced. `runtime_syscalls()` measures
what runc's own container init needs the same way, from a trivial busybox-static container, so
an enforce profile built from observed behaviour does not stop the runtime before the workload
starts. `enforce()` runs a workload under a bundle for `runward run --enforce`.

Imports only the core: the profile to prove is computed by the enforcer's policy function
(services/enforcer/policies.py) in the control plane and handed in.
"""
