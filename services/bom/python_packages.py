"""Python packages from file paths: which import root a file belongs to, and which
distribution (PyPI name) an import root most likely comes from.

The sensor sees paths, not package metadata: a plain `import yaml` opens
`site-packages/yaml/__init__.pyc` and never `PyYAML-6.0.2.dist-info/`, so imports and
distributions are observed separately and joined by name.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass

_SITE = re.compile(r"^(?P<site>.*/(?:site|dist)-packages)/(?P<rest>.+)$")
_DIST_INFO = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.]*?)-(?P<version>[0-9][^/-]*?)\.(?:dist|egg)-info$")
_CODE_SUFFIX = re.compile(r"\.(?:py|pyc|pyo|so|pyd)$")
_ABI_TAG = re.compile(r"\.(?:cpython|pypy|abi)[^./]*(?:-[^./]+)*(?=\.(?:so|pyc|pyd)$)")


@dataclass(frozen=True)
class SitePath:
    """A file under site-packages, classified."""

    site: str
    kind: str  # "dist-info" | "code" | "vendored-lib" | "other"
    package: tuple[str, ...] = ()  # the directories leading to the file, e.g. ("google", "protobuf")
    module: str = ""  # the file's module name: "__init__", "client", "six"
    dist_name: str = ""
    dist_version: str = ""

    @property
    def is_init(self) -> bool:
        return self.module == "__init__"


def classify(path: str) -> SitePath | None:
    match = _SITE.match(path)
    if not match:
        return None
    site, rest = match.group("site"), match.group("rest")
    parts = [p for p in rest.split("/") if p and p != "__pycache__"]
    if not parts:
        return None
    head = parts[0]
    if dist := _DIST_INFO.match(head):
        return SitePath(site, "dist-info", dist_name=dist.group("name"), dist_version=dist.group("version"))
    if head.endswith(".libs"):  # auditwheel-vendored shared objects, e.g. numpy.libs/libopenblas.so
        return SitePath(site, "vendored-lib", package=(head.removesuffix(".libs"),))
    if not _CODE_SUFFIX.search(parts[-1]) or any("." in p or "-" in p for p in parts[:-1]):
        return SitePath(site, "other")  # .pth files, package data, non-importable directories
    return SitePath(site, "code", package=tuple(parts[:-1]), module=module_name(parts[-1]))


def import_root(site_path: SitePath, known: Container[str]) -> str | None:
    """The import root a code file belongs to, or None when a known root already covers it.

    A regular package's __init__ runs before any of its modules, so the first file seen under
    a new prefix names its root: `yaml/__init__` -> yaml; a namespace package (google,
    opentelemetry) has no __init__, so its root is the first package that has one:
    `google/protobuf/__init__` -> google.protobuf.
    """
    package = list(site_path.package)
    for depth in range(1, len(package) + 1):
        if ".".join(package[:depth]) in known:
            return None
    if not package:
        return site_path.module  # a top-level module: six.py, typing_extensions.py
    return ".".join(package)


def module_name(filename: str) -> str:
    return _CODE_SUFFIX.sub("", _ABI_TAG.sub("", filename))


def normalise(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


# Import names whose distribution is named differently; the common cases only. A name not
# listed here still resolves when its dist-info was opened or its distribution was declared.
IMPORT_ALIASES: dict[str, str] = {
    "yaml": "pyyaml",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "google.protobuf": "protobuf",
    "attr": "attrs",
    "jwt": "pyjwt",
    "dotenv": "python-dotenv",
    "OpenSSL": "pyopenssl",
    "Crypto": "pycryptodome",
    "zmq": "pyzmq",
    "git": "gitpython",
    "magic": "python-magic",
    "_cffi_backend": "cffi",
    "pkg_resources": "setuptools",
    "_distutils_hack": "setuptools",
    "multipart": "python-multipart",
    "jose": "python-jose",
    "docx": "python-docx",
    "serial": "pyserial",
    "usb": "pyusb",
    "Levenshtein": "levenshtein",
    "faiss": "faiss-cpu",
    "psycopg2": "psycopg2-binary",
    "confluent_kafka": "confluent-kafka",
    "kafka": "kafka-python",
    "google.genai": "google-genai",
    "google.generativeai": "google-generativeai",
    "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.proto": "opentelemetry-proto",
    "opentelemetry.semconv": "opentelemetry-semantic-conventions",
    "opentelemetry.instrumentation": "opentelemetry-instrumentation",
    "typing_extensions": "typing-extensions",
    "rpds": "rpds-py",
    "google.rpc": "googleapis-common-protos",
    "google.api": "googleapis-common-protos",
    "pydantic_core": "pydantic-core",
    "mcp_server_time": "mcp-server-time",
    "websocket": "websocket-client",
    "grpc": "grpcio",
    "huggingface_hub": "huggingface-hub",
    "llama_cpp": "llama-cpp-python",
    "onnxruntime": "onnxruntime",
    "tiktoken_ext": "tiktoken",
    "_yaml": "pyyaml",
    "markupsafe": "markupsafe",
}


def resolve(import_name: str, candidates: Iterable[str]) -> str | None:
    """The distribution an import root belongs to, among candidate distribution names."""
    return _resolve(import_name, candidate_index(candidates))


def candidate_index(candidates: Iterable[str]) -> dict[str, str]:
    """Candidate distribution names by their normalised name (the last of equals wins), made once
    for many imports: normalising every candidate for every import grew with the square of them."""
    return {normalise(c): c for c in candidates}


def _resolve(import_name: str, by_norm: Mapping[str, str]) -> str | None:
    base = import_name.replace(".", "-")
    wanted = [
        normalise(base),
        normalise(_alias(import_name)),
        *(normalise(f"{prefix}{base}") for prefix in ("python-", "py", "py-")),
        normalise(f"{base}-python"),
        normalise(f"{base}-py"),
    ]
    for name in wanted:
        if name and name in by_norm:
            return by_norm[name]
    return None


# Namespaces whose direct sub-packages mostly ship in one distribution (opentelemetry.context,
# .trace, .baggage, .propagate... are all opentelemetry-api). Deeper roots are named after
# their path (opentelemetry.exporter.otlp.proto.common -> opentelemetry-exporter-otlp-proto-common).
NAMESPACE_DEFAULTS: dict[str, str] = {"opentelemetry": "opentelemetry-api"}


def _alias(import_name: str) -> str:
    if import_name in IMPORT_ALIASES:
        return IMPORT_ALIASES[import_name]
    parent, _, _ = import_name.rpartition(".")
    return NAMESPACE_DEFAULTS.get(parent, "") if parent.count(".") == 0 else ""


def distribution_of(import_name: str, candidates: Iterable[str] | Mapping[str, str]) -> str:
    """Best PyPI name for an import root: a candidate, the alias table, else the import name.

    `candidates` are distribution names, or their `candidate_index`."""
    index = candidates if isinstance(candidates, Mapping) else candidate_index(candidates)
    found = _resolve(import_name, index)
    if found:
        return normalise(found)
    return normalise(_alias(import_name) or import_name.replace(".", "-"))
