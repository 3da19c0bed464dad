"""Redaction against a corpus of real secret formats (synthetic values in each vendor's format)
and a benign corpus that must come through unchanged."""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from collections.abc import Callable

import pytest

from runward.core.redaction import REDACTED, redact_argv, redact_audit_event, redact_text, redact_value

_rng = random.Random(15)
ALNUM = string.ascii_letters + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def r(alphabet: str, n: int) -> str:
    """Random characters, with at least two digits, an upper and a lower case letter where the
    alphabet has them (as real generated tokens do)."""
    while True:
        value = "".join(_rng.choice(alphabet) for _ in range(n))
        checks: list[Callable[[str], bool]] = []
        if set(alphabet) & set(string.digits):
            checks.append(lambda v: sum(c.isdigit() for c in v) >= 2)
        if set(alphabet) & set(string.ascii_uppercase):
            checks.append(lambda v: any(c.isupper() for c in v))
        if set(alphabet) & set(string.ascii_lowercase):
            checks.append(lambda v: any(c.islower() for c in v))
        if all(check(value) for check in checks):
            return value


def pem(label: str, lines: int = 6) -> str:
    body = "\n".join(r(B64, 64) for _ in range(lines))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


# (format, text as it would appear in a prompt / tool argument / result, the secret in it)
SECRETS: list[tuple[str, str, str]] = []


def case(name: str, secret: str, template: str = "{}") -> None:
    SECRETS.append((name, template.format(secret), secret))


case("aws access key id", "AKIA" + r(UPPER_ALNUM, 16), "aws_access_key_id = {}")
case("aws temporary access key id", "ASIA" + r(UPPER_ALNUM, 16), "export AWS_ACCESS_KEY_ID={}")
case("aws secret access key (env)", r(B64, 40), "AWS_SECRET_ACCESS_KEY={}")
case("aws secret access key (ini)", r(B64, 40), "[default]\naws_secret_access_key = {}\n")
case("aws session token", r(B64, 300), "AWS_SESSION_TOKEN={}")
case("github classic pat", "ghp_" + r(ALNUM, 36), "git clone https://github.com/o/r with {}")
case("github oauth token", "gho_" + r(ALNUM, 36))
case("github app installation token", "ghs_" + r(ALNUM, 36), "token: {}")
case("github fine-grained pat", "github_pat_" + r(ALNUM, 22) + "_" + r(ALNUM, 59), "use {} for the API")
case("gitlab pat", "glpat-" + r(URLSAFE, 20), "PRIVATE-TOKEN {}")
case("google api key", "AIza" + r(URLSAFE, 35), "key={}&q=weather")
case("google oauth client secret", "GOCSPX-" + r(URLSAFE, 28), '{{"installed": {{"client_secret": "{}"}}}}')
case("google oauth access token", "ya29." + r(URLSAFE, 120), "Authorization: Bearer {}")
case("gcp service account key", pem("PRIVATE KEY"), '{{"type": "service_account", "private_key": {}}}')
case("stripe live secret key", "sk_live_" + r(ALNUM, 24), "stripe.api_key = '{}'")
case("stripe test secret key", "sk_test_" + r(ALNUM, 99), "STRIPE {}")
case("stripe restricted key", "rk_live_" + r(ALNUM, 24), "{}")
case("stripe webhook secret", "whsec_" + r(ALNUM, 32), "signing secret {}")
case("openai project key", "sk-proj-" + r(URLSAFE, 120), "OPENAI_API_KEY={}")
case("openai legacy key", "sk-" + r(ALNUM, 20) + "T3BlbkFJ" + r(ALNUM, 20), "the key {} works")
case("anthropic key", "sk-ant-api03-" + r(URLSAFE, 93) + "AA", "x-api-key: {}")
case("hugging face token", "hf_" + r(string.ascii_letters, 34), "huggingface-cli login --token {}")
case("slack bot token", f"xoxb-{_rng.randint(10**11, 10**12)}-{_rng.randint(10**11, 10**12)}-{r(ALNUM, 24)}")
case("slack webhook", f"https://hooks.slack.com/services/T{r(UPPER_ALNUM, 8)}/B{r(UPPER_ALNUM, 10)}/{r(ALNUM, 24)}")
case("slack app token", f"xapp-1-A{r(UPPER_ALNUM, 10)}-{_rng.randint(10**12, 10**13)}-{r(HEX, 64)}")
case("npm token", "npm_" + r(ALNUM, 36), "//registry.npmjs.org/:_authToken={}")
case("pypi token", "pypi-AgEIcHlwaS5vcmc" + r(URLSAFE, 120), "password = {}")
case("sendgrid key", "SG." + r(URLSAFE, 22) + "." + r(URLSAFE, 43))
case("twilio api key", "SK" + r(HEX, 32), "TWILIO {}")
case("mailchimp key", r(HEX, 32) + "-us6")
case("telegram bot token", f"{_rng.randint(10**8, 10**9)}:AA{r(URLSAFE, 33)}", "https://api.telegram.org/bot{}/getMe")
case("discord bot token", "M" + r(URLSAFE, 23) + "." + r(URLSAFE, 6) + "." + r(URLSAFE, 27))
case(
    "jwt",
    ".".join(
        base64.urlsafe_b64encode(part.encode()).decode().rstrip("=")
        for part in ('{"alg":"HS256","typ":"JWT"}', f'{{"sub":"{r(ALNUM, 12)}","iat":1516239022}}', r(ALNUM, 32))
    ),
    "cookie: session={}",
)
case("azure storage account key", r(B64, 86) + "==", "DefaultEndpointsProtocol=https;AccountName=x;AccountKey={};")
case("rsa private key", pem("RSA PRIVATE KEY"))
case("ec private key", pem("EC PRIVATE KEY", 3))
case("openssh private key", pem("OPENSSH PRIVATE KEY"))
case("pgp private key block", pem("PGP PRIVATE KEY BLOCK").replace("BLOCK-----\n", "BLOCK-----\n\n", 1))
case("unterminated private key", "-----BEGIN PRIVATE KEY-----\n" + r(B64, 64) + "\n" + r(B64, 40), "{}")
case("putty key", f"PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\n{r(B64, 44)}\nPrivate-MAC: {r(HEX, 64)}")
case("postgres url password", "pg-" + r(LOWER_ALNUM, 10), "DATABASE_URL=postgres://app:{}@db.internal:5432/app")
case("mysql url password", r(ALNUM, 12), "mysql://root:{}@127.0.0.1/shop")
case("redis url password", r(ALNUM, 16), "redis://:{}@cache:6379/0")
case("json field pw", "hunter2", '{{"user": "bob", "pw": "{}"}}')
case("json field password", "correct horse battery staple", '{{"password": "{}"}}')
case("yaml password", "Tr0ub4dor&3", "db:\n  password: {}\n")
case("spoken password", "hunter2", "my password is {}")
case("bearer header", r(URLSAFE, 40), "Authorization: Bearer {}")
case("basic auth header", base64.b64encode(b"admin:" + r(ALNUM, 12).encode()).decode(), "Authorization: Basic {}")
case("vault token", "hvs." + r(URLSAFE, 90))
case("shopify token", "shpat_" + r(HEX, 32))
case("digitalocean token", "dop_v1_" + r(HEX, 64))
case("databricks token", "dapi" + r(HEX, 32))
case("age secret key", "AGE-SECRET-KEY-1" + r(UPPER_ALNUM, 58))
case("linear api key", "lin_api_" + r(ALNUM, 40))
case("postman api key", "PMAK-" + r(HEX, 24) + "-" + r(HEX, 34))
case("new relic key", "NRAK-" + r(UPPER_ALNUM, 27))
case("square secret", "sq0csp-" + r(URLSAFE, 43))
case("doppler token", "dp.pt." + r(ALNUM, 43))
case("alibaba access key id", "LTAI" + r(ALNUM, 20))
case("grafana service account token", "glsa_" + r(ALNUM, 32) + "_" + r(HEX, 8))
case("generic high-entropy key", r(ALNUM, 40), "here is the key, keep it safe: {} ok")
case("client secret assignment", r(LOWER_ALNUM, 24), "CLIENT_SECRET={}")
case(
    "docker auth field",
    base64.b64encode(b"me:" + r(ALNUM, 10).encode()).decode(),
    '{{"auths": {{"r": {{"auth": "{}"}}}}}}',
)


def test_the_corpus_has_at_least_forty_real_formats() -> None:
    assert len({name for name, _, _ in SECRETS}) >= 40


@pytest.mark.parametrize(("name", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_every_secret_format_is_redacted_in_text_and_in_structures(name: str, text: str, secret: str) -> None:
    clean, kinds = redact_text(text)
    assert secret not in clean and REDACTED in clean and kinds, (name, clean)
    for part in (secret[:24], secret[-24:]) if len(secret) >= 48 else ():
        assert part not in clean, (name, clean)
    nested, _ = redact_value({"arguments": {"query": text, "items": [text]}})
    assert secret not in json.dumps(nested)
    try:
        parsed = json.loads(text)
    except ValueError:
        return
    assert secret not in json.dumps(redact_value(parsed)[0])


ARGV_SECRETS = [
    ["mysql", "-u", "root", "--password", "s3cret-pass", "shop"],
    ["mysql", "-u", "root", "--password=s3cret-pass", "shop"],
    ["/usr/bin/mysqldump", "-uroot", "-ps3cret-pass", "shop"],
    ["env", "PGPASSWORD=s3cret-pass", "psql", "-h", "db", "-p", "5432"],
    ["sshpass", "-p", "s3cret-pass", "ssh", "host"],
    ["curl", "-H", "Authorization: Bearer s3cret-pass-0123456789", "https://api.example.com"],
    ["gh", "auth", "login", "--with-token", "--token", "s3cret-pass"],
    ["aws", "configure", "set", "aws_secret_access_key", "x", "--secret-key", "s3cret-pass"],
    ["vault", "login", "-method=userpass", "username=u", "password=s3cret-pass"],
    ["docker", "login", "-u", "me", "-p", "s3cret-pass", "registry.example.com"],
]


@pytest.mark.parametrize("argv", ARGV_SECRETS, ids=[" ".join(a[:2]) for a in ARGV_SECRETS])
def test_argv_flags_and_env_assignments_are_redacted(argv: list[str]) -> None:
    clean, kinds = redact_argv(argv)
    assert "s3cret-pass" not in " ".join(clean) and kinds, clean
    assert clean[0] == argv[0] and len(clean) == len(argv)


def test_secret_objects_in_audit_events_are_redacted() -> None:
    token = base64.b64encode(r(ALNUM, 20).encode()).decode()
    event = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Event",
        "auditID": str(uuid.uuid4()),
        "verb": "get",
        "objectRef": {"resource": "secrets", "name": "db"},
        "responseObject": {"kind": "Secret", "metadata": {"name": "db"}, "data": {"password": token, "host": "ZGI="}},
        "requestObject": {"kind": "SecretList", "items": [{"kind": "Secret", "stringData": {"x": "plain-1"}}]},
    }
    clean, kinds = redact_audit_event(event)
    text = json.dumps(clean)
    assert token not in text and "ZGI=" not in text and "plain-1" not in text and "k8s_secret" in kinds
    assert clean["auditID"] == event["auditID"] and clean["objectRef"] == event["objectRef"]


BENIGN = [
    "What time is it in Europe/Paris? Please answer in 24-hour format.",
    "The password is required and must be at least 12 characters long.",
    "Reset your password via the password_reset_url in settings.",
    '{"max_tokens": 1024, "input_tokens": 42, "output_tokens": 7, "temperature": 0.2}',
    f"trace {uuid.uuid4().hex} span {r(HEX, 16)} request {uuid.uuid4()}",
    f"/var/lib/kubelet/pods/{uuid.uuid4()}/volumes/kubernetes.io~projected/kube-api-access-x2x7q",
    f"ghcr.io/acme/support-bot@sha256:{r(HEX, 64)}",
    f"docker.io/library/python:3.11-slim image id sha256:{r(HEX, 64)} commit {r(HEX, 40)}",
    "pod support-bot-7d4b9c5f6-x2x7q in namespace agents, container 9c1e7f0b2a44",
    "POST https://api.openai.com/v1/chat/completions model gpt-4o-2024-08-06",
    "claude-3-5-sonnet-20241022 answered via https://api.anthropic.com/v1/messages",
    "DATABASE_URL=postgres://db.internal:5432/app?sslmode=require",
    "def get_current_time(timezone: str) -> str:\n    return datetime.now(ZoneInfo(timezone)).isoformat()",
    "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so and /opt/conda/envs/py311/bin/python3.11",
    "kubectl get deployments -n agents -o jsonpath='{.items[*].metadata.name}'",
    "The bearer of this letter is a friend. Basic needs come first.",
    "AbstractHttp2ServerConnectionFactory and Base64EncoderV2Impl are Java classes.",
    "ISO 8601: 2026-11-30T13:05:45.123456Z; epoch 1764507945123456789",
    "token: ${GITHUB_TOKEN} and password: <your password here> and api_key: ***",
    "sort by created_at desc, limit 50, offset 100; token_count=512",
    "MCP server time 2026.10.19 protocol 2025-11-25 tools convert_time get_current_time",
    "email bob@example.com, host mail.example.com:587, user-agent kube-probe/1.31",
]


@pytest.mark.parametrize("text", BENIGN)
def test_benign_text_is_not_mangled(text: str) -> None:
    assert redact_text(text) == (text, [])


def test_benign_structures_and_argv_are_not_mangled() -> None:
    arguments = {"timezone": "Europe/Paris", "max_tokens": 100, "auth": {"type": "oauth"}, "id": str(uuid.uuid4())}
    assert redact_value(arguments) == (arguments, [])
    for argv in (
        ["ssh", "-p", "2222", "deploy@host"],
        ["psql", "-h", "db", "-p", "5432", "-U", "app"],
        ["python", "-m", "pip", "install", "--no-cache-dir", "requests==2.32.3"],
        ["ls", "-la", "/var/run/secrets/kubernetes.io/serviceaccount"],
        ["kubectl", "create", "secret", "generic", "db", "--from-file=password.txt"],
    ):
        assert redact_argv(argv) == (argv, []), argv


def test_exec_argv_is_redacted_by_ingest_before_the_store_and_by_the_intake_translators() -> None:
    from datetime import datetime, timezone

    from edges.intake import falco
    from runward.core.contracts import Attribution, ExecDetail, RawSensorEvent, SourceRef
    from services.ingest import domain

    argv = ["mysql", "-h", "db", "--password", "s3cret-pass", "-pAlsoS3cret", "shop"]
    event = RawSensorEvent(
        event_id="e",
        ts=datetime(2026, 11, 30, tzinfo=timezone.utc),
        attribution=Attribution(deployment="agents/bot"),
        detail=ExecDetail(binary="/usr/bin/mysql", argv=argv),
    )
    (enriched,) = domain.enrich_sensor({}, event, SourceRef(topic="runward.raw.sensor", partition=0, offset=1))
    stored = json.dumps(enriched.model_dump(mode="json"))
    assert "s3cret-pass" not in stored and "AlsoS3cret" not in stored
    assert enriched.detail.argv[:4] == ["mysql", "-h", "db", "--password"]
    alert = {
        "time": "2026-11-30T10:00:00.000000000Z",
        "rule": "Run shell",
        "source": "syscall",
        "output_fields": {
            "evt.type": "execve",
            "proc.exepath": "/usr/bin/mysql",
            "proc.cmdline": "mysql --password=s3cret-pass -h db",
            "k8s.ns.name": "agents",
            "k8s.pod.name": "bot-7d4b9c5f6-x2x7q",
        },
    }
    translated = falco.translate(alert)
    assert "s3cret-pass" not in translated.model_dump_json()
