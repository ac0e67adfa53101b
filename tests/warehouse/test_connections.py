"""Connections that clients reuse: the warehouse never closes one under a request a client just sent."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from tests.factories import Api, LiveServer, Subtree, auth
from warehouse.client.transport import warehouse_http

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize("refusal", ["no_credentials", "file_too_large"])
async def test_an_upload_refused_before_its_body_was_read_leaves_the_next_request_its_answer(
    api: Api, refusal: str, tree: Subtree
) -> None:
    """A refusal sent while the scan is still unread (a 401) closes the connection: it says so
    (Connection: close), so the client's next request goes out on a new connection and is answered.
    Before, the refusal looked kept-alive and the next request met "Server disconnected"."""
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    scan = b"%PDF-1.7\n" + b"0" * 300_000  # fits the loopback's socket buffers whole, as in the benchmark
    headers = {"Content-Type": "application/pdf", "X-File-Kind": "component"}
    if refusal == "no_credentials":
        expected = 401
    else:
        expected = 413
        headers |= auth(token)
    one_connection = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with LiveServer(WAREHOUSE_MAX_FILE_BYTES="100000") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=one_connection) as http:
            for _ in range(3):
                refused = await http.post(f"/api/v1/dossiers/{dossier['id']}/files", content=scan, headers=headers)
                assert refused.status_code == expected
                if refusal == "no_credentials":  # refused unread (a 413 reads a moderate excess away first)
                    assert refused.headers.get("connection") == "close"
                after = await http.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(token))
                assert after.status_code == 200


def _get(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock.recv(65536)


async def test_an_idle_connection_stays_open_for_the_configured_time_then_closes() -> None:
    with (
        LiveServer(WAREHOUSE_API_KEEP_ALIVE_SECONDS="3") as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        assert _get(sock).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(1.5)
        assert _get(sock).startswith(b"HTTP/1.1 200"), "an idle connection is reused within its time"
        idle_from = time.monotonic()
        assert sock.recv(1) == b"", "the server closes it once its time is up"
        assert 2 < time.monotonic() - idle_from < 6


class FlakyServer:
    """A server on this machine that closes each connection's first request unanswered (as an API
    closing an idle kept-alive connection would) and answers the same request on a new connection."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
        )
        await reader.readexactly(length)
        self.requests.append(head.split(b"\r\n")[0])
        if self.connections % 2 == 1:
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


async def test_the_project_clients_send_again_only_what_is_safe_to_send_twice() -> None:
    flaky = FlakyServer()
    server = await asyncio.start_server(flaky.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with warehouse_http(url, timeout=5) as http:
            assert (await http.get("/api/v1/dossiers")).text == "ok"
            assert (await http.post("/api/v1/dossiers", json={}, headers={"Idempotency-Key": "k1"})).text == "ok"
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post("/api/v1/dossiers", json={})  # might create a second dossier: not repeated
    finally:
        server.close()
        await server.wait_closed()
    assert flaky.requests.count(b"POST /api/v1/dossiers HTTP/1.1") == 3
    assert flaky.requests.count(b"GET /api/v1/dossiers HTTP/1.1") == 2
