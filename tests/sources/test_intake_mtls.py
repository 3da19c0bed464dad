"""Mutual TLS on the intake: `runward otlp --tls-cert --tls-key --client-ca` takes senders whose
client certificate the handshake verifies, and no one else (real certificates, real process)."""

from __future__ import annotations

import datetime
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from runward.control.broker import free_port

REPO = Path(__file__).resolve().parents[2]
FALCO = (REPO / "tests" / "data" / "bom" / "sensors" / "falco_alerts.jsonl").read_bytes()


def _issue(
    tmp: Path, name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, ca: bool = False
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (tmp / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key


def test_client_certificate_from_the_configured_ca_is_the_only_way_in(kafka_bootstrap: str, tmp_path: Path) -> None:
    ca = _issue(tmp_path, "ca", None, ca=True)
    _issue(tmp_path, "server", ca)
    _issue(tmp_path, "sender", ca)
    rogue_ca = _issue(tmp_path, "rogue-ca", None, ca=True)
    _issue(tmp_path, "rogue", rogue_ca)
    port = free_port()
    argv = [sys.executable, "-m", "runward.control.cli", "otlp", "--port", str(port)]
    argv += ["--kafka", kafka_bootstrap, "--tls-cert", str(tmp_path / "server.pem")]
    argv += ["--tls-key", str(tmp_path / "server.key"), "--client-ca", str(tmp_path / "ca.pem")]
    env = {k: v for k, v in os.environ.items() if k not in {"RUNWARD_API_TOKENS", "RUNWARD_TOKENS_FILE"}}
    env["PYTHONPATH"] = str(REPO)  # no sender tokens at all: the certificate is the only way in
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"https://127.0.0.1:{port}/v1/falco"
    sender = (str(tmp_path / "sender.pem"), str(tmp_path / "sender.key"))
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                trust.load_cert_chain(*sender)
                reply = httpx.post(url, content=FALCO, verify=trust, timeout=10)
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        assert reply.status_code == 200 and reply.json()["accepted"] == 4
        wrong = httpx.post(url, content=FALCO, verify=trust, headers={"Authorization": "Bearer guess"}, timeout=10)
        assert wrong.status_code == 401  # a bearer token, if sent, must still be a valid one
        anonymous = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        rogue = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        rogue.load_cert_chain(str(tmp_path / "rogue.pem"), str(tmp_path / "rogue.key"))
        for context in (anonymous, rogue):
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                httpx.post(url, content=FALCO, verify=context, timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
