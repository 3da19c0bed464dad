"""Content rules for LLM/MCP records before they leave the producer.

Secrets are redacted at the edge (not only in ingest) because the raw topic is itself a
copy the SOC may retain; an agent with capture switched off publishes metadata only.
"""

from __future__ import annotations

from collections.abc import Sequence

from edges.intake.config import SourceConfig
from runward.core.contracts import RawLlmEvent
from runward.core.redaction import redact_text, redact_value


def apply_content_policy(event: RawLlmEvent, config: SourceConfig, notes: Sequence[str] = ()) -> RawLlmEvent:
    """Redact or drop prompt/response content and tool arguments.

    `notes` are producer-generated facts (e.g. a gateway refusal) that are metadata, not the
    agent's content, so they survive capture-off.
    """
    if not config.captures(event.attribution.deployment):
        return event.model_copy(
            update={
                "input_messages": [],
                "output_messages": list(notes),
                "tool_arguments": None,
            }
        )
    inputs = [redact_text(text)[0] for text in event.input_messages]
    outputs = [*notes, *(redact_text(text)[0] for text in event.output_messages)]
    arguments = redact_value(event.tool_arguments)[0] if event.tool_arguments is not None else None
    return event.model_copy(
        update={
            "input_messages": inputs,
            "output_messages": outputs,
            "tool_arguments": arguments,
        }
    )
