"""What kind of thing an agent's egress endpoint is, from its name and port.

Model providers and RAG stores are what the egress allowlist of the PRR must name, so the
AI-BOM labels them; anything else is `external` (or `infrastructure` for DNS).
"""

from __future__ import annotations

import ipaddress
from fnmatch import fnmatchcase

MODEL_PROVIDERS: dict[str, str] = {
    "api.openai.com": "openai",
    "*.openai.azure.com": "azure.ai.openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "*-aiplatform.googleapis.com": "gcp.vertex_ai",
    "aiplatform.googleapis.com": "gcp.vertex_ai",
    "bedrock-runtime.*.amazonaws.com": "aws.bedrock",
    "api.mistral.ai": "mistral_ai",
    "api.cohere.ai": "cohere",
    "api.cohere.com": "cohere",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.deepseek.com": "deepseek",
    "openrouter.ai": "openrouter",
    "api.x.ai": "xai",
    "api.perplexity.ai": "perplexity",
    "api-inference.huggingface.co": "huggingface",
    "router.huggingface.co": "huggingface",
    "*.services.ai.azure.com": "azure.ai.inference",
    "api.fireworks.ai": "fireworks",
}
MODEL_HUBS = (
    "huggingface.co",
    "*.huggingface.co",
    "cdn-lfs*.huggingface.co",
    "*.hf.co",
    "ollama.com",
    "registry.ollama.ai",
)
RAG_HOSTS = (
    "*.pinecone.io",
    "*.weaviate.network",
    "*.weaviate.cloud",
    "*.qdrant.io",
    "*.qdrant.tech",
    "*.zillizcloud.com",
    "*.turbopuffer.com",
    "*.trychroma.com",
    "*.es.io",
    "*.elastic-cloud.com",
    "*.algolia.net",
    "*.mongodb.net",
    "*.supabase.co",
)
RAG_PORTS = {
    6333: "qdrant",
    6334: "qdrant",
    19530: "milvus",
    8000: "chroma",
    9200: "elasticsearch",
    8080: "weaviate",
    6379: "redis",
    5432: "postgres",
}
DNS_PORTS = {53, 853}


def provider_of(host: str) -> str | None:
    return next((p for pattern, p in MODEL_PROVIDERS.items() if fnmatchcase(host.lower(), pattern)), None)


def classify(host: str, port: int, protocol: str) -> str:
    name = host.lower()
    if port in DNS_PORTS:
        return "infrastructure"
    if provider_of(name):
        return "model-provider"
    if any(fnmatchcase(name, pattern) for pattern in MODEL_HUBS):
        return "model-hub"
    if any(fnmatchcase(name, pattern) for pattern in RAG_HOSTS):
        return "rag-source"
    if is_loopback(name):
        return "local"
    # A vector store's well-known port is a hint, not proof: only trust it in-cluster.
    if port in RAG_PORTS and (_private(name) or name.endswith(".svc") or ".svc.cluster.local" in name):
        return "rag-source"
    return "external"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _private(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_private
    except ValueError:
        return False
