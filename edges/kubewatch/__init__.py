"""The Kubernetes watcher (`runward watch`): Deployments, ReplicaSets, Pods, ServiceAccounts, Roles,
ClusterRoles and their bindings, as `K8sObjectEvent`s on runward.raw.k8s keyed `namespace/name`.

Why it exists: without it a live agent has no ServiceAccount, no `runward.io/autonomy` tier and no
revision, so the drift rule and the identity surface have nothing real to work on.

Resume semantics (the informer's, with the official client's list and watch calls):
- Start with a list (paginated; consistent read). Items come without kind/apiVersion; they are set
  from the list. Every object is published ADDED and remembered with its resourceVersion; the
  list's resourceVersion is the resume point.
- Watch from the resume point with allowWatchBookmarks. Each ADDED/MODIFIED/DELETED is published
  and moves the resume point to its object's resourceVersion; a BOOKMARK only moves the resume point
  (nothing changed up to there, so quiet resources keep a point that outlives etcd compaction).
  An event whose object has the resourceVersion already published for it is not published again.
- The server ends a watch after timeoutSeconds (spread, so watches do not reconnect together):
  watch again at once from the resume point.
- A dropped connection, a read timeout (no bytes for timeout + grace: a dead peer), a torn line or
  a non-410 error: watch again from the same resume point after an exponential backoff with jitter.
  The server replays only events after that point, so nothing already published is published again.
- 410 Gone (HTTP status, or an ERROR event with code 410, or an expired continue token): the resume
  point was compacted away and events were lost. List again and publish the difference with what
  was published: new objects ADDED, changed ones MODIFIED, vanished ones DELETED with their last
  state, unchanged ones nothing. The stream stays a complete history of states without duplicates.
- A record the broker never acknowledged: relist that resource from scratch (everything ADDED).
- A restart of the watcher starts with a list: consumers must take a repeated ADDED as a no-op.

What a revision is (`runward.core.contracts.revision`): a Deployment revision is its pod template,
not `metadata.generation`. Scaling, annotation- and label-only changes move generation or
resourceVersion and are not revisions; images, command, args, env, mounted configuration, the
`runward.io/*` template annotations (model and MCP configuration) and the image digests the pods
actually run are. Deployment, ReplicaSet and Pod events carry `revision`: the normalised template
hash, the current ReplicaSet's pod-template-hash and the digests its pods report, as far as known.

Before publishing, managedFields and last-applied-configuration are dropped and secret env values
redacted; the revision hash is taken before redaction, so a changed secret is a changed revision.
"""
