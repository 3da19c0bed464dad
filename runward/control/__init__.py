"""The control plane on top of the pipeline: the API, the CLI, the supervisor, replay and the
embedded broker."""
