"""The job's coordinator: a small TCP service through which the processes of a
``jax.distributed`` job meet.

Process 0 runs the :class:`CoordinatorServer` at the coordinator address; every process
(process 0 too) talks to it through a :class:`CoordinatorClient`.  The service offers:

* ``register(process_id, counts)`` -- wait until every process has said how many devices of
  each backend it has; returns every process's counts (the global device list follows);
* ``put(key, value)`` / ``get(key)`` -- a key-value store whose ``get`` waits for the key
  (the NCCL unique id of a communicator goes from its rank 0 to the others this way);
* ``exchange(key, rank, size, value)`` -- wait until ``size`` ranks have given their value
  under ``key``; returns all of them in rank order (collectives between CPU devices of
  different processes go this way, and a barrier is an exchange of nothing).

Messages are length-prefixed pickles on a plain socket; each thread of a client has its own
connection (one request at a time on it).
"""
from __future__ import annotations

import pickle
import socket
import socketserver
import struct
import threading
import time
from typing import Any

__all__ = ["CoordinatorServer", "CoordinatorClient", "parse_address", "connect"]

_HEADER = struct.Struct("!Q")


def parse_address(address: str) -> tuple[str, int]:
    """('host', port) of ``'host:port'``; ValueError naming the address otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"coordinator_address must be 'host:port', got {address!r}")
    return host or "localhost", int(port)


def _send(sock: socket.socket, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("the coordinator connection closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv(sock: socket.socket) -> Any:
    (n,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    return pickle.loads(_recv_exact(sock, n))


class _State:
    """What the server keeps: registrations, the key-value store and open exchanges."""

    def __init__(self, num_processes: int):
        self.num_processes = num_processes
        self.cond = threading.Condition()
        self.counts: dict[int, dict] = {}
        self.store: dict[str, Any] = {}
        self.exchanges: dict[str, dict] = {}  # key -> {rank: value}
        self.taken: dict[str, int] = {}  # key -> how many ranks have read the result

    def handle(self, request: tuple) -> Any:
        op, *args = request
        with self.cond:
            if op == "register":
                pid, counts = args
                self.counts[pid] = counts
                self.cond.notify_all()
                self.cond.wait_for(lambda: len(self.counts) == self.num_processes)
                return [self.counts[p] for p in range(self.num_processes)]
            if op == "put":
                key, value = args
                self.store[key] = value
                self.cond.notify_all()
                return None
            if op == "get":
                (key,) = args
                self.cond.wait_for(lambda: key in self.store)
                return self.store[key]
            if op == "exchange":
                key, rank, size, value = args
                values = self.exchanges.setdefault(key, {})
                values[rank] = value
                self.cond.notify_all()
                self.cond.wait_for(lambda: len(self.exchanges.get(key, values)) == size)
                result = [values[r] for r in range(size)]
                self.taken[key] = self.taken.get(key, 0) + 1
                if self.taken[key] == size:  # everyone has it: forget the step
                    self.exchanges.pop(key, None)
                    self.taken.pop(key, None)
                return result
        raise ValueError(f"unknown coordinator request {op!r}")


class CoordinatorServer:
    """The coordinator service of a job of ``num_processes`` processes, served from a
    background thread at ``address`` ('host:port')."""

    def __init__(self, address: str, num_processes: int):
        state = _State(num_processes)

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                while True:
                    try:
                        request = _recv(self.request)
                    except (ConnectionError, OSError):
                        return
                    try:
                        reply = ("ok", state.handle(request))
                    except Exception as e:  # noqa: BLE001 - handed to the client
                        reply = ("error", repr(e))
                    _send(self.request, reply)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        host, port = parse_address(address)
        self.server = Server(("" if host in ("localhost", "0.0.0.0") else host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="tinyjax-coordinator")
        self.thread.start()

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CoordinatorClient:
    """A process's connection to the coordinator (one socket per calling thread)."""

    def __init__(self, address: str, timeout_s: float = 300.0):
        self.address = parse_address(address)
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def _socket(self) -> socket.socket:
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = socket.create_connection(self.address, timeout=self.timeout_s)
            sock.settimeout(None)
            self._local.sock = sock
            with self._lock:
                self._sockets.append(sock)
        return sock

    def _call(self, *request: Any) -> Any:
        sock = self._socket()
        _send(sock, request)
        status, value = _recv(sock)
        if status != "ok":
            raise RuntimeError(f"the coordinator refused {request[0]}: {value}")
        return value

    def register(self, process_id: int, counts: dict) -> list[dict]:
        return self._call("register", process_id, counts)

    def put(self, key: str, value: Any) -> None:
        self._call("put", key, value)

    def get(self, key: str) -> Any:
        return self._call("get", key)

    def exchange(self, key: str, rank: int, size: int, value: Any) -> list[Any]:
        return self._call("exchange", key, rank, size, value)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.close()
                except OSError:
                    pass
            self._sockets.clear()


def connect(address: str, timeout_s: float = 300.0) -> CoordinatorClient:
    """A client of the coordinator at ``address``, retrying until it answers (process 0
    may start its server after the others start connecting)."""
    deadline = time.monotonic() + timeout_s
    client = CoordinatorClient(address, timeout_s)
    while True:
        try:
            client._socket()
            return client
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not reach the coordinator at {address} within "
                                   f"{timeout_s:.0f} s") from None
            time.sleep(0.05)

