"""Production Kafka settings: one configuration, mapped onto librdkafka (every confluent-kafka
client) and onto Faust/aiokafka (the stages), and refused with the setting's name when it
does not hold together. No TLS/SASL broker runs here: the mappings are checked as values, and
the token provider against a real OIDC-style token endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import faust
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from runward.core.config import Settings
from runward.core.kafka import client_config, producer_config
from runward.core.stage import OidcTokenProvider, broker_credentials, data_dir


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed CA and a client certificate signed by it, as PEM files."""
    root = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.timezone.utc)

    def cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey) -> bytes:
        built = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=subject == issuer, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )
        return built.public_bytes(serialization.Encoding.PEM)

    ca_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    files = {
        "ca": root / "ca.pem",
        "cert": root / "client.pem",
        "key": root / "client.key",
    }
    files["ca"].write_bytes(cert("runward-test-ca", ca_key, "runward-test-ca", ca_key))
    files["cert"].write_bytes(cert("runward-client", client_key, "runward-test-ca", ca_key))
    files["key"].write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-pass"),
        )
    )
    return files


def test_plaintext_by_default() -> None:
    config = Settings(kafka="k:9092")
    assert client_config(config, "c") == {
        "bootstrap.servers": "k:9092",
        "client.id": "c",
        "security.protocol": "plaintext",
    }
    assert broker_credentials(config) is None


def test_producer_guarantees_cannot_be_tuned_away() -> None:
    out = producer_config(Settings(), "c", {"enable.idempotence": False, "acks": 1, "linger.ms": 5})
    assert (out["enable.idempotence"], out["acks"], out["partitioner"], out["linger.ms"]) == (
        True,
        "all",
        "murmur2_random",
        5,
    )


def test_scram_over_mutual_tls_maps_onto_both_clients(pki: dict[str, Path]) -> None:
    config = Settings(
        kafka="broker:9093",
        kafka_tls=True,
        kafka_tls_ca_file=pki["ca"],
        kafka_tls_cert_file=pki["cert"],
        kafka_tls_key_file=pki["key"],
        kafka_tls_key_password="key-pass",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="runward",
        kafka_sasl_password="s3cret",
    )
    librdkafka = producer_config(config, "runward-api")
    for key, value in {
        "security.protocol": "sasl_ssl",
        "ssl.ca.location": str(pki["ca"]),
        "ssl.key.password": "key-pass",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "runward",
        "sasl.password": "s3cret",
    }.items():
        assert librdkafka[key] == value, key
    auth = credentials_to_aiokafka_auth(broker_credentials(config))
    assert (auth["security_protocol"], auth["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("runward", "s3cret")
    context: ssl.SSLContext = auth["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert any(c["subject"] == ((("commonName", "runward-test-ca"),),) for c in context.get_ca_certs())
    assert "s3cret" not in repr(config)  # secrets stay out of logs


def test_tls_only_and_hostname_check_off(pki: dict[str, Path]) -> None:
    config = Settings(kafka_tls=True, kafka_tls_ca_file=pki["ca"], kafka_tls_check_hostname=False)
    out = client_config(config, "c")
    assert out["security.protocol"] == "ssl" and out["ssl.endpoint.identification.algorithm"] == "none"
    credentials = broker_credentials(config)
    assert isinstance(credentials, faust.SSLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SSL" and not auth["ssl_context"].check_hostname


def test_scram_without_tls_is_sasl_plaintext() -> None:
    config = Settings(kafka_sasl_mechanism="SCRAM-SHA-256", kafka_sasl_username="u", kafka_sasl_password="p")
    assert client_config(config, "c")["security.protocol"] == "sasl_plaintext"
    auth = credentials_to_aiokafka_auth(broker_credentials(config))
    assert (auth["security_protocol"], auth["sasl_mechanism"], auth["ssl_context"]) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-256",
        None,
    )


@pytest.fixture
def token_endpoint() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """An OAuth 2.0 token endpoint (client-credentials grant) on 127.0.0.1 that records its requests."""
    requests: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            requests.append(form)
            ok = form.get("client_secret") == ["oidc-secret"]
            body: dict[str, Any] = (
                {"access_token": f"token-{len(requests)}", "token_type": "Bearer", "expires_in": 3600}
                if ok
                else {"error": "invalid_client"}
            )
            raw = json.dumps(body).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/token", requests
    finally:
        server.shutdown()


def test_oauthbearer_maps_onto_both_clients(token_endpoint: tuple[str, list[dict[str, list[str]]]]) -> None:
    url, requests = token_endpoint
    config = Settings(
        kafka_tls=True,
        kafka_sasl_mechanism="OAUTHBEARER",
        kafka_oauth_token_url=url,
        kafka_oauth_client_id="runward",
        kafka_oauth_client_secret="oidc-secret",
        kafka_oauth_scope="kafka",
    )
    out = client_config(config, "c")
    assert (out["security.protocol"], out["sasl.mechanism"], out["sasl.oauthbearer.method"]) == (
        "sasl_ssl",
        "OAUTHBEARER",
        "oidc",
    )
    assert (out["sasl.oauthbearer.token.endpoint.url"], out["sasl.oauthbearer.client.id"]) == (url, "runward")
    assert (out["sasl.oauthbearer.client.secret"], out["sasl.oauthbearer.scope"]) == ("oidc-secret", "kafka")

    auth = credentials_to_aiokafka_auth(broker_credentials(config))
    assert (auth["security_protocol"], auth["sasl_mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    provider = auth["sasl_oauth_token_provider"]

    async def twice() -> tuple[str, str]:
        return await provider.token(), await provider.token()

    assert asyncio.run(twice()) == ("token-1", "token-1")  # fetched once, reused until near expiry
    assert requests == [
        {
            "grant_type": ["client_credentials"],
            "client_id": ["runward"],
            "client_secret": ["oidc-secret"],
            "scope": ["kafka"],
        }
    ]


def test_oauth_token_refusal_names_the_setting(token_endpoint: tuple[str, list[dict[str, list[str]]]]) -> None:
    url, _ = token_endpoint
    provider = OidcTokenProvider(url, "runward", "wrong")
    with pytest.raises(RuntimeError, match="RUNWARD_KAFKA_OAUTH_TOKEN_URL"):
        asyncio.run(provider.token())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"kafka_sasl_mechanism": "SCRAM-SHA-256"},
            "RUNWARD_KAFKA_SASL_MECHANISM=SCRAM-SHA-256 needs RUNWARD_KAFKA_SASL_USERNAME",
        ),
        (
            {"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "u"},
            "RUNWARD_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 needs RUNWARD_KAFKA_SASL_PASSWORD",
        ),
        ({"kafka_sasl_username": "u"}, "RUNWARD_KAFKA_SASL_USERNAME is set but RUNWARD_KAFKA_SASL_MECHANISM is not"),
        (
            {"kafka_sasl_mechanism": "OAUTHBEARER", "kafka_oauth_client_id": "c", "kafka_oauth_client_secret": "s"},
            "RUNWARD_KAFKA_SASL_MECHANISM=OAUTHBEARER needs RUNWARD_KAFKA_OAUTH_TOKEN_URL",
        ),
        (
            {
                "kafka_sasl_mechanism": "OAUTHBEARER",
                "kafka_oauth_token_url": "http://idp.example.com/token",
                "kafka_oauth_client_id": "c",
                "kafka_oauth_client_secret": "s",
            },
            "RUNWARD_KAFKA_OAUTH_TOKEN_URL=http://idp.example.com/token must be an https:// URL",
        ),
        (
            {"kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u", "kafka_sasl_password": "p"},
            "RUNWARD_KAFKA_SASL_MECHANISM=PLAIN sends the password in clear; set RUNWARD_KAFKA_TLS=true",
        ),
        (
            {"kafka_tls": True, "kafka_tls_ca_file": "/nonexistent/ca.pem"},
            "RUNWARD_KAFKA_TLS_CA_FILE=/nonexistent/ca.pem: no such file",
        ),
        ({"kafka_tls_ca_file": "/etc/hostname"}, "RUNWARD_KAFKA_TLS_CA_FILE is set but RUNWARD_KAFKA_TLS is off"),
        (
            {"kafka_tls": True, "kafka_tls_cert_file": "/etc/hostname"},
            "mutual TLS needs both RUNWARD_KAFKA_TLS_CERT_FILE",
        ),
    ],
)
def test_inconsistent_settings_are_refused_naming_the_setting(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match="inconsistent Kafka security settings") as caught:
        Settings(**settings)
    assert message in str(caught.value)


def test_inconsistency_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWARD_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("RUNWARD_KAFKA_SASL_PASSWORD", "p")
    with pytest.raises(ValidationError, match="needs RUNWARD_KAFKA_SASL_USERNAME"):
        Settings()


def test_faust_data_directory_is_under_home(tmp_path: Path) -> None:
    from services.profiler.app import build

    stage = build(Settings(home=tmp_path / "home"))
    assert (
        stage.app.conf.datadir
        == data_dir(stage.config, "profiler")
        == (tmp_path / "home" / "faust" / "runward-profiler")
    )
