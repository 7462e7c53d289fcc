"""The listener's web configuration (exporter-toolkit format): every key does what it says or is
refused; basic auth, TLS and client certificates tried over real sockets on 127.0.0.1."""

from __future__ import annotations

import base64
import gc
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import yaml
from lifecycled.config import parse_settings
from lifecycled.errors import ConfigError
from lifecycled.http import Api, HttpServer
from lifecycled.store import open_store
from lifecycled.webconfig import WebConfig, load_web_config
from prometheus_client import CollectorRegistry, Gauge

TOKEN = "t0ken"


def hashed(password: str) -> str:
    """A bcrypt hash as htpasswd writes it ($2y$)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)


def openssl(*argv: str) -> None:
    subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, signed by the CA, and a
    client certificate from another CA."""
    d = tmp_path_factory.mktemp("pki")
    files = {name: d / name for name in ("ca.crt", "ca.key", "server.crt", "server.key",
                                         "client.crt", "client.key", "rogue.crt", "rogue.key")}
    for ca in ("ca", "rogue"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                f"/CN={ca}", "-keyout", str(d / f"{ca}.key"), "-out", str(d / f"{ca}.crt"))
    for leaf, extra in (("server", ["-addext", "subjectAltName=IP:127.0.0.1"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={leaf}", *extra,
                "-keyout", str(d / f"{leaf}.key"), "-out", str(d / f"{leaf}.csr"))
        openssl("x509", "-req", "-in", str(d / f"{leaf}.csr"), "-CA", str(d / "ca.crt"),
                "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1", "-copy_extensions",
                "copy", "-out", str(d / f"{leaf}.crt"))
    return files


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("data, problem", [
    ({"tls_server_config": {"cert_file": "server.crt"}},
     "cert_file and key_file must be given together"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key",
                            "client_auth_type": "RequireAnyClientCert"}},
     "client_auth_type: RequireAnyClientCert accepts certificates nobody verified"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key",
                            "client_auth_type": "RequireAndVerifyClientCert"}},
     "client_ca_file: RequireAndVerifyClientCert needs the CA"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key",
                            "cipher_suites": ["TLS_AES_128_GCM_SHA256"]}},
     "tls_server_config.cipher_suites: not supported"),
    ({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key",
                            "min_version": "TLS10"}},
     "min_version: expected TLS12 or TLS13"),
    ({"http_server_config": {"http2": False}}, "http_server_config: not supported"),
    ({"basic_auth_users": {"prometheus": "plain-password"}},
     "basic_auth_users.prometheus: expected a bcrypt hash"),
    ({"basic_auth_userz": {}}, "basic_auth_userz: unknown key"),
])
@pytest.mark.slow
def test_every_key_is_honoured_or_refused(pki: dict[str, Path], tmp_path: Path,
                                         data: dict[str, Any], problem: str) -> None:
    for name in ("server.crt", "server.key"):
        (tmp_path / name).write_bytes(pki[name].read_bytes())
    with pytest.raises(ConfigError) as info:
        load_web_config(write(tmp_path, data))
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_the_listener_tls_section_refuses_keys_it_ignored(tmp_path: Path) -> None:
    """daemon.tls.ca_file and verify passed check-config, yet a client without a certificate
    got 200: they are refused, naming where client certificates are configured."""
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    for tls in ({"ca_file": str(ca)}, {"verify": False}):
        with pytest.raises(ConfigError) as info:
            parse_settings({"daemon": {"tls": tls}})
        assert "daemon.web_config_file" in "\n".join(info.value.problems)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    registry = CollectorRegistry()
    Gauge("lifecycled_test_value", "A value.", registry=registry).set(1)
    store = open_store("sqlite:///s.db", tmp_path)
    servers: list[HttpServer] = []

    def start(web: WebConfig) -> int:
        api = Api(store, registry, lambda: (True, {}), lambda: TOKEN,
                  posts={"jobs": lambda request: (202, {"accepted": True})})
        server = HttpServer(api, "127.0.0.1", 0, web=web)
        server.start()
        servers.append(server)
        return server.port

    yield start
    for server in servers:
        server.stop()
    store.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_guards_every_read_but_liveness(serve: Any, tmp_path: Path) -> None:
    web = load_web_config(write(tmp_path, {"basic_auth_users": {"prometheus": hashed("s3cret")}}))
    url = f"http://127.0.0.1:{serve(web)}"
    for path in ("/metrics", "/api/v1/models", "/readyz", "/"):
        refused = requests.get(url + path, timeout=5)
        assert refused.status_code == 401 and "Basic" in refused.headers["WWW-Authenticate"]
        assert requests.get(url + path, headers=basic("prometheus", "wrong"),
                            timeout=5).status_code == 401
        assert requests.get(url + path, headers=basic("prometheus", "s3cret"),
                            timeout=5).status_code == 200
    assert requests.get(url + "/metrics", headers=basic("nobody", "s3cret"),
                        timeout=5).status_code == 401
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    # a state change is judged by its bearer token, as without basic auth
    assert requests.post(url + "/api/v1/jobs/x/events", json={}, timeout=5).status_code == 401
    assert requests.post(url + "/api/v1/jobs/x/events", json={}, timeout=5,
                         headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 202


# asyncio drops the transport of a handshake the server refused without closing its socket, and
# says so when it is collected: collected here, inside the test, and not counted against it
@pytest.mark.filterwarnings("ignore:unclosed:ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_client_certificates_are_required_and_verified(serve: Any, pki: dict[str, Path],
                                                       tmp_path: Path) -> None:
    web = load_web_config(write(tmp_path, {"tls_server_config": {
        "cert_file": str(pki["server.crt"]), "key_file": str(pki["server.key"]),
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(pki["ca.crt"]), "min_version": "TLS12"}}))
    url = f"https://127.0.0.1:{serve(web)}/metrics"
    ca = str(pki["ca.crt"])
    # under TLS 1.3 the server's refusal may come after the client's handshake, as a reset
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, verify=ca, timeout=5)  # no certificate
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, verify=ca, timeout=5,  # a certificate nobody here signed
                     cert=(str(pki["rogue.crt"]), str(pki["rogue.key"])))
    ok = requests.get(url, verify=ca, timeout=5,
                      cert=(str(pki["client.crt"]), str(pki["client.key"])))
    assert ok.status_code == 200 and "lifecycled_test_value" in ok.text
    gc.collect()


def test_tls13_only_refuses_a_tls12_client(serve: Any, pki: dict[str, Path],
                                           tmp_path: Path) -> None:
    web = load_web_config(write(tmp_path, {"tls_server_config": {
        "cert_file": str(pki["server.crt"]), "key_file": str(pki["server.key"]),
        "min_version": "TLS13"}}))
    port = serve(web)
    context = ssl.create_default_context(cafile=str(pki["ca.crt"]))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    import socket

    with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", port), 5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1"):
        pass


def test_a_relative_web_config_file_is_found_beside_the_configuration(tmp_path: Path) -> None:
    from lifecycled.config import load_settings

    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "web.yml").write_text(yaml.safe_dump({"basic_auth_users": {
        "prometheus": hashed("s3cret")}}))
    (folder / "lifecycled.yaml").write_text("daemon: {web_config_file: web.yml}\n")
    settings = load_settings(folder / "lifecycled.yaml")
    assert settings.daemon.web_config_file == str(folder / "web.yml")
