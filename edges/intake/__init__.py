"""Sources that feed Runward's raw topics from instrumentation teams already run:
OTLP GenAI/MCP spans (runward.raw.llm), Falco alerts and Tetragon events (runward.raw.sensor).

Translators are pure (bytes or JSON in, contract records out); `otlp_receiver` is the only I/O.
"""
