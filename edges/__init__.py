"""Edges that bring data into the pipeline from outside: the intake servers (OTLP, Falco,
Tetragon, Kubernetes audit webhook) and the MCP tool gateway. The eBPF sensor is the third edge
(`sensor/`, at the top level as the design card puts it)."""
