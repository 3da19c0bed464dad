"""The MCP gateway: a stdio / streamable-HTTP proxy in front of an agent's MCP servers.

It records what the agent's tools are (initialize, tools/list, list changes after startup)
and what it does with them (tools/call) on runward.raw.llm, and it is the application-layer
authorization boundary: in enforce mode a call outside the agent's allowlist never reaches
the server.
"""
