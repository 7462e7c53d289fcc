"""A local S3-compatible server for tests: moto's server mode, on 127.0.0.1 and a free port, with
IAM authentication on (a wrong key is refused as S3 refuses it). It stands in for S3, which
cannot run here; what lifecycled sends it is what it would send to S3 (the AWS SDK inside
pyarrow, signed requests)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3:
    endpoint: str  # host:port
    access_key: str
    secret_key: str
    bucket: str
    _server: Any = field(repr=False, default=None)
    _auth: Any = field(repr=False, default=None)

    def url(self, key: str, *, endpoint: str | None = None) -> str:
        """The URL of ``key`` in the bucket, naming this endpoint (plain HTTP)."""
        return (f"s3://{self.bucket}/{key}?endpoint_override={endpoint or self.endpoint}"
                f"&scheme=http&region={REGION}")

    def env(self, **overrides: str) -> dict[str, str]:
        """Credentials as the AWS default chain reads them from the environment."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", **overrides}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=f"http://{self.endpoint}", region_name=REGION,
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key)

    def put(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=key)

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.__exit__(None, None, None)
        if self._server is not None:
            self._server.stop()


def start_s3(bucket: str = "models") -> S3:
    """Start the server, create a user allowed S3 and its access key, and the bucket."""
    import logging

    import boto3
    from moto.core.authorization import disable_iam_authentication, enable_iam_authentication
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"127.0.0.1:{port}"
    setup = {"endpoint_url": f"http://{endpoint}", "region_name": REGION,
             "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
    with disable_iam_authentication():
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="lifecycled")
        iam.put_user_policy(UserName="lifecycled", PolicyName="s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="lifecycled")["AccessKey"]
        boto3.client("s3", **setup).create_bucket(Bucket=bucket)
    auth = enable_iam_authentication()
    auth.__enter__()
    return S3(endpoint, key["AccessKeyId"], key["SecretAccessKey"], bucket, server, auth)


@contextlib.contextmanager
def _endpoint(handle: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A TCP endpoint on 127.0.0.1 handing each connection to ``handle(conn, stop)`` in a
    thread of its own; the connections are closed when the block ends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)
            threading.Thread(target=handle, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@contextlib.contextmanager
def silent_endpoint() -> Iterator[str]:
    """A TCP endpoint that accepts connections and never answers (a hung object store)."""
    with _endpoint(lambda conn, stop: None) as address:
        yield address


def _requests(conn: socket.socket) -> Iterator[bytes]:
    """The heads of the HTTP requests on one kept-alive connection (without their bodies: these
    endpoints are only sent HEAD and GET), until the client closes it."""
    buffered = b""
    while True:
        while b"\r\n\r\n" not in buffered:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffered += chunk
        request, buffered = buffered.split(b"\r\n\r\n", 1)
        yield request


def _object_head(length: int) -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {length}\r\n"
            f"Last-Modified: Sun, 06 Dec 2026 00:00:00 GMT\r\n\r\n").encode()


@contextlib.contextmanager
def failing_endpoint(requests: list[str]) -> Iterator[str]:
    """A TCP endpoint that answers a HEAD with a CSV object's headers and drops the connection
    on any other request (a network failure mid-read); each request line is appended to
    ``requests``."""
    def answer(conn: socket.socket, stop: threading.Event) -> None:
        for request in _requests(conn):
            requests.append(request.split(b"\r\n", 1)[0].decode(errors="replace"))
            if not request.startswith(b"HEAD"):
                conn.close()
                return
            try:
                conn.sendall(_object_head(8))
            except OSError:
                return

    with _endpoint(answer) as address:
        yield address


@contextlib.contextmanager
def dripping_endpoint(interval: float = 0.05, length: int = 400) -> Iterator[str]:
    """A TCP endpoint that answers every request with a valid HTTP reply whose body (``length``
    bytes of CSV) comes one byte every ``interval`` seconds: each byte restarts the SDK's read
    timeout and keeps it above its low-speed limit, so only a total deadline ends the read. A HEAD
    is answered at once."""
    body = (b"a,b\n" + b"1,2\n" * length)[:length]

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        for request in _requests(conn):
            try:
                conn.sendall(_object_head(length))
                if request.startswith(b"HEAD"):
                    continue
                for i in range(len(body)):
                    if stop.wait(interval):
                        return
                    conn.sendall(body[i:i + 1])
            except OSError:
                return

    with _endpoint(answer) as address:
        yield address
