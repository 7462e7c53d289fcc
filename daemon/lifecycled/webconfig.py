"""The listener's TLS, client certificates and basic auth from a web configuration file in the
Prometheus exporter-toolkit format (the file node_exporter users already have):

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven, NoClientCert
      client_ca_file: clients-ca.crt
      min_version: TLS12                             # or TLS13
    basic_auth_users:
      prometheus: $2y$10$...                         # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':')

Relative paths resolve against the file's folder. Every key is honoured or refused: the
exporter-toolkit keys Python's TLS cannot honour (RequestClientCert and RequireAnyClientCert, which
accept an unverified certificate; cipher and curve lists; http_server_config) are errors naming the
key, never silently ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from base64 import b64decode
from binascii import Error as Base64Error
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lifecycled.errors import ConfigError

CLIENT_AUTH = {  # exporter-toolkit's client_auth_type -> what the listener asks of clients
    "NoClientCert": "none",
    "VerifyClientCertIfGiven": "optional",
    "RequireAndVerifyClientCert": "required",
}
UNVERIFIED = ("RequestClientCert", "RequireAnyClientCert")
TLS_VERSIONS = ("TLS12", "TLS13")
REFUSED = {
    "tls_server_config": ("cipher_suites", "curve_preferences", "prefer_server_cipher_suites",
                          "max_version", "client_allowed_sans"),
    "": ("http_server_config", "rate_limit"),
}


@dataclass(frozen=True)
class WebConfig:
    """What the listener serves with: TLS (when ``cert_file``), the client certificates it asks
    for, and the users allowed to read (empty: no basic auth)."""

    cert_file: str | None = None
    key_file: str | None = None
    client_auth: str = "none"  # none, optional, required
    client_ca_file: str | None = None
    min_version: str = "TLS12"
    users: Mapping[str, str] = field(default_factory=dict)  # user -> bcrypt hash

    @property
    def tls(self) -> bool:
        return self.cert_file is not None


PLAIN = WebConfig()  # plain HTTP, no users: the default


def load_web_config(path: str | Path) -> WebConfig:
    """Read and check ``path``; a ConfigError lists every problem with its key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot read the web configuration: "
                           f"{' '.join(str(exc).split())}"]) from None
    problems: list[str] = []
    config = parse_web_config(data or {}, path.parent, problems)
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return config


def parse_web_config(data: Any, base: Path, problems: list[str]) -> WebConfig:
    """The WebConfig of a parsed file; each problem appended to ``problems``."""
    if not isinstance(data, dict):
        problems.append("must be a mapping")
        return WebConfig()
    for key in data:
        if key in REFUSED[""]:
            problems.append(f"{key}: not supported by lifecycled's listener")
        elif key not in ("tls_server_config", "basic_auth_users"):
            problems.append(f"{key}: unknown key")
    tls = data.get("tls_server_config") or {}
    users = data.get("basic_auth_users") or {}
    if not isinstance(tls, dict) or not isinstance(users, dict):
        problems.append("tls_server_config and basic_auth_users must be mappings")
        return WebConfig()
    for key in tls:
        if key in REFUSED["tls_server_config"]:
            problems.append(f"tls_server_config.{key}: not supported (Python's TLS defaults apply)")
        elif key not in ("cert_file", "key_file", "client_auth_type", "client_ca_file",
                         "min_version"):
            problems.append(f"tls_server_config.{key}: unknown key")

    def file(key: str) -> str | None:
        value = tls.get(key)
        if value is None:
            return None
        resolved = base / str(value)
        if not os.access(resolved, os.R_OK):
            problems.append(f"tls_server_config.{key}: cannot read {resolved}")
        return str(resolved)

    cert, key, ca = file("cert_file"), file("key_file"), file("client_ca_file")
    if (cert is None) != (key is None):
        problems.append("tls_server_config: cert_file and key_file must be given together")
    auth_type = tls.get("client_auth_type", "NoClientCert")
    if auth_type in UNVERIFIED:
        problems.append(f"tls_server_config.client_auth_type: {auth_type} accepts certificates "
                        "nobody verified; use VerifyClientCertIfGiven or "
                        "RequireAndVerifyClientCert with client_ca_file")
    elif auth_type not in CLIENT_AUTH:
        problems.append(f"tls_server_config.client_auth_type: expected one of "
                        f"{', '.join(CLIENT_AUTH)}, got {auth_type!r}")
    client_auth = CLIENT_AUTH.get(auth_type, "none")
    if client_auth != "none" and ca is None:
        problems.append(f"tls_server_config.client_ca_file: {auth_type} needs the CA that signs "
                        "the clients' certificates")
    if ca is not None and client_auth == "none":
        problems.append("tls_server_config.client_ca_file: given, but client_auth_type "
                        "NoClientCert asks no client for a certificate")
    if tls and cert is None:
        problems.append("tls_server_config: cert_file and key_file are required")
    version = tls.get("min_version", "TLS12")
    if version not in TLS_VERSIONS:
        problems.append(f"tls_server_config.min_version: expected TLS12 or TLS13, got {version!r}")
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            problems.append(f"basic_auth_users.{user}: expected a bcrypt hash ($2y$...), never "
                            "a password")
    return WebConfig(cert, key, client_auth, ca, str(version),
                     {str(u): str(h) for u, h in users.items()})


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes. bcrypt is slow on purpose (tens of
    milliseconds), so a credential that was right once is remembered by a keyed digest, as
    exporter-toolkit does, and a scrape every few seconds costs one hash."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)
        self._key = os.urandom(32)
        self._known: set[bytes] = set()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.users)

    def allows(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = b64decode(value.strip(), validate=True).decode().partition(":")
        except (Base64Error, UnicodeError, ValueError):
            return False
        hashed = self.users.get(user)
        if not sep or hashed is None:
            return False
        digest = hmac.new(self._key, f"{user}\0{password}\0{hashed}".encode(),
                          hashlib.sha256).digest()
        with self._lock:
            if digest in self._known:
                return True
        import bcrypt

        try:
            ok = bcrypt.checkpw(password.encode(), hashed.encode())
        except ValueError:
            return False
        if ok:
            with self._lock:
                if len(self._known) > 1024:
                    self._known.clear()
                self._known.add(digest)
        return ok
