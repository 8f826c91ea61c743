"""EPMD over trio: client calls and an embedded EPMD server.

Client side: `register` (keeps the ALIVE2 connection open for as long as the
node is registered; closing the returned `Registration` unregisters),
`port_please` and `names`. Server side: `serve_epmd`, an EPMD that real
``erl`` nodes can register with and look names up in, for machines where no
``epmd`` runs; `ensure_epmd` starts it only if nothing answers on the port.

The EPMD port defaults to ``$ERL_EPMD_PORT`` or 4369, like ``erl``. All the
protocol work is in `otpy.dist._epmd`; this module only moves bytes.
"""

from __future__ import annotations

import errno
import functools
import os
from types import TracebackType

import attrs
import trio

from otpy.dist._epmd import (
    DEFAULT_EPMD_PORT,
    NODE_TYPE_HIDDEN,
    NODE_TYPE_NORMAL,
    EpmdError,
    EpmdProtocolError,
    EpmdRegistrationError,
    EpmdRegistry,
    EpmdServerConnection,
    NodeInfo,
    decode_alive2_resp,
    decode_names_resp,
    decode_port2_resp,
    encode_alive2_req,
    encode_names_req,
    encode_port_please2_req,
)

__all__ = [
    "EPMD_MODES",
    "EmbeddedEpmd",
    "EpmdTimeout",
    "EpmdUnavailable",
    "Registration",
    "default_epmd_port",
    "ensure_epmd",
    "names",
    "port_please",
    "register",
    "serve_epmd",
]

#: Seconds a server connection may stay idle before it registers or asks.
SERVER_IDLE_TIMEOUT = 30.0


class EpmdUnavailable(EpmdError):
    """No EPMD answers at the given host and port."""


class EpmdTimeout(EpmdError, TimeoutError):
    """EPMD did not answer in time."""


def default_epmd_port() -> int:
    """The EPMD port to use: ``$ERL_EPMD_PORT`` if set, else 4369.

    Returns:
        The port number.
    """
    value = os.environ.get("ERL_EPMD_PORT", "")
    try:
        port = int(value)
    except ValueError:
        return DEFAULT_EPMD_PORT
    return port if 0 < port < 65536 else DEFAULT_EPMD_PORT


async def _open(host: str, port: int | None) -> trio.SocketStream:
    port = default_epmd_port() if port is None else port
    try:
        return await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise EpmdUnavailable(f"no EPMD reachable at {host}:{port} ({exc})") from exc


async def _read_all(stream: trio.SocketStream) -> bytes:
    buf = bytearray()
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return bytes(buf)
        buf += data
        if len(buf) > 1 << 24:
            raise EpmdProtocolError("EPMD response larger than 16 MiB")


@attrs.define(eq=False)
class Registration:
    """A live EPMD registration; close it to unregister.

    Attributes:
        info: What was registered.
        creation: The creation number EPMD assigned (for pids, refs, ports).
        epmd_port: The EPMD port used.
    """

    info: NodeInfo
    creation: int
    epmd_port: int
    _stream: trio.SocketStream = attrs.field(alias="stream")
    _closed: bool = False

    @property
    def name(self) -> str:
        """The registered alive name."""
        return self.info.name

    @property
    def port(self) -> int:
        """The registered distribution port."""
        return self.info.port

    @property
    def closed(self) -> bool:
        """Whether `aclose` was called."""
        return self._closed

    async def wait_lost(self) -> None:
        """Return when EPMD closes the registration connection (or on `aclose`).

        A node whose EPMD went away is no longer findable by others.
        """
        try:
            while await self._stream.receive_some(4096):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def aclose(self) -> None:
        """Close the connection, which makes EPMD unregister the name."""
        self._closed = True
        await self._stream.aclose()

    async def __aenter__(self) -> Registration:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def register(
    name: str,
    port: int,
    *,
    hidden: bool = False,
    host: str = "127.0.0.1",
    epmd_port: int | None = None,
    extra: bytes = b"",
    timeout: float = 5.0,
) -> Registration:
    """Register a node with EPMD (ALIVE2_REQ).

    Args:
        name: The alive name (the part before ``@``).
        port: The port our node accepts distribution connections on.
        hidden: Register as a hidden node (type 72) rather than normal (77).
        host: Where EPMD runs; must be this machine (EPMD only accepts
            registrations from local addresses).
        epmd_port: EPMD's port (default `default_epmd_port`).
        extra: The opaque Extra field.
        timeout: Seconds to wait for EPMD's answer.

    Returns:
        The open registration. Keep it open while the node is distributed.

    Raises:
        EpmdUnavailable: Nothing listens at the EPMD address.
        EpmdRegistrationError: EPMD refused (the name is taken).
        EpmdTimeout: No answer in time.
        EpmdProtocolError: Invalid arguments or a malformed answer.
    """
    info = NodeInfo(
        name=name,
        port=port,
        node_type=NODE_TYPE_HIDDEN if hidden else NODE_TYPE_NORMAL,
        extra=extra,
    )
    request = encode_alive2_req(info)
    real_port = default_epmd_port() if epmd_port is None else epmd_port
    stream = await _open(host, real_port)
    try:
        with trio.fail_after(timeout):
            await stream.send_all(request)
            buf = b""
            while (parsed := decode_alive2_resp(buf)) is None:
                data = await stream.receive_some(64)
                if not data:
                    raise EpmdProtocolError("EPMD closed the connection before answering")
                buf += data
    except trio.TooSlowError:
        await trio.aclose_forcefully(stream)
        raise EpmdTimeout(f"EPMD at {host}:{real_port} did not answer ALIVE2_REQ") from None
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    response, _ = parsed
    if not response.ok:
        await trio.aclose_forcefully(stream)
        raise EpmdRegistrationError(name, response.result)
    return Registration(info=info, creation=response.creation, epmd_port=real_port, stream=stream)


def _split_target(name: str, host: str | None) -> tuple[str, str]:
    if "@" in name:
        alive, _, node_host = name.partition("@")
        return alive, host or node_host
    return name, host or "localhost"


async def port_please(
    name: str,
    host: str | None = None,
    *,
    epmd_port: int | None = None,
    timeout: float = 5.0,
) -> tuple[int, NodeInfo] | None:
    """Ask EPMD on ``host`` where node ``name`` listens (PORT_PLEASE2_REQ).

    Args:
        name: An alive name, or a full ``"name@host"`` (its host is used when
            ``host`` is not given).
        host: The host whose EPMD to ask (default: the node's host, else
            ``"localhost"``).
        epmd_port: EPMD's port (default `default_epmd_port`).
        timeout: Seconds to wait.

    Returns:
        ``(port, info)`` where ``info`` also has the node's type and its
        distribution version range; or None if the name is not registered.

    Raises:
        EpmdUnavailable: No EPMD there.
        EpmdTimeout: No answer in time.
        EpmdProtocolError: Malformed answer or invalid name.
    """
    alive, target = _split_target(name, host)
    request = encode_port_please2_req(alive)
    stream = await _open(target, epmd_port)
    try:
        with trio.fail_after(timeout):
            await stream.send_all(request)
            data = await _read_all(stream)
    except trio.TooSlowError:
        raise EpmdTimeout(f"EPMD at {target} did not answer PORT_PLEASE2_REQ") from None
    finally:
        await trio.aclose_forcefully(stream)
    parsed = decode_port2_resp(data)
    if parsed is None:
        raise EpmdProtocolError("EPMD closed the connection in the middle of PORT2_RESP")
    info, _ = parsed
    if info is None:
        return None
    return info.port, info


async def names(
    host: str = "localhost",
    *,
    epmd_port: int | None = None,
    timeout: float = 5.0,
) -> list[tuple[str, int]]:
    """List the nodes registered with EPMD on ``host`` (NAMES_REQ).

    Args:
        host: The host whose EPMD to ask.
        epmd_port: EPMD's port (default `default_epmd_port`).
        timeout: Seconds to wait.

    Returns:
        ``(name, port)`` pairs.

    Raises:
        EpmdUnavailable: No EPMD there.
        EpmdTimeout: No answer in time.
        EpmdProtocolError: Malformed answer.
    """
    stream = await _open(host, epmd_port)
    try:
        with trio.fail_after(timeout):
            await stream.send_all(encode_names_req())
            data = await _read_all(stream)
    except trio.TooSlowError:
        raise EpmdTimeout(f"EPMD at {host} did not answer NAMES_REQ") from None
    finally:
        await trio.aclose_forcefully(stream)
    return list(decode_names_resp(data).nodes)


# ------------------------------------------------------------------ server


@attrs.define(eq=False)
class EmbeddedEpmd:
    """Handle on a running embedded EPMD server.

    Attributes:
        port: The port it listens on.
        host: The address it listens on.
        registry: Its registered nodes.
    """

    port: int
    host: str
    registry: EpmdRegistry
    _cancel_scope: trio.CancelScope = attrs.field(alias="cancel_scope")

    def stop(self) -> None:
        """Stop serving; registrations are dropped and connections closed."""
        self._cancel_scope.cancel()


async def _serve_connection(stream: trio.SocketStream, server: EmbeddedEpmd) -> None:
    conn = EpmdServerConnection(server.registry)
    try:
        async with stream:
            while not conn.should_close:
                if conn.registered is None:
                    with trio.move_on_after(SERVER_IDLE_TIMEOUT) as idle:
                        data = await stream.receive_some(4096)
                    if idle.cancelled_caught:
                        break
                else:
                    data = await stream.receive_some(4096)
                try:
                    reply = conn.receive_data(data)
                except EpmdProtocolError:
                    break
                if reply:
                    await stream.send_all(reply)
                if conn.kill_requested:
                    server.stop()
                if not data:
                    break
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        conn.connection_lost()


async def serve_epmd(
    port: int = DEFAULT_EPMD_PORT,
    *,
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[EmbeddedEpmd] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run an EPMD server until cancelled (start it with ``nursery.start``).

    Real ``erl`` nodes started with ``ERL_EPMD_PORT=<port>`` (and
    ``-start_epmd false``) register with it and look nodes up through it.

    Args:
        port: The port to listen on (0 picks a free one).
        host: The address to listen on (loopback by default).
        task_status: Receives the `EmbeddedEpmd` handle once listening.

    Raises:
        OSError: The port cannot be bound (e.g. an EPMD already runs).
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    registry = EpmdRegistry(epmd_port=bound)
    try:
        with trio.CancelScope() as scope:
            server = EmbeddedEpmd(port=bound, host=host, registry=registry, cancel_scope=scope)
            async with trio.open_nursery() as nursery:
                task_status.started(server)
                for listener in listeners:
                    nursery.start_soon(_accept_loop, listener, server, nursery)
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)


async def _accept_loop(
    listener: trio.SocketListener, server: EmbeddedEpmd, nursery: trio.Nursery
) -> None:
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:  # e.g. EMFILE: back off instead of dying
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                await trio.sleep(0.1)
                continue
            raise
        nursery.start_soon(_serve_connection, stream, server)


#: What a node does when no EPMD answers on its port (``epmd=`` of `otpy.open_node`):
#: start a separate daemon that outlives it (the default, as ``erl``), run one
#: inside itself (it stops with the node), or start none (fail).
EPMD_MODES = ("daemon", "embedded", "none")


async def _answers(host: str, port: int) -> bool:
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError:
        return False
    await trio.aclose_forcefully(stream)
    return True


async def ensure_epmd(
    nursery: trio.Nursery,
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    mode: str = "embedded",
    timeout: float = 10.0,
) -> EmbeddedEpmd | None:
    """Make sure an EPMD answers on ``port``, starting one if not.

    Args:
        nursery: Where an embedded server runs if one is started.
        port: The EPMD port (default `default_epmd_port`).
        host: The loopback address to check (and, embedded, listen on).
        mode: ``"embedded"``: run one in this process (it stops with it);
            ``"daemon"``: start a separate daemon process that outlives this
            one (the system ``epmd -daemon`` when installed, else otpy's own,
            see `otpy.dist._epmd_daemon`); ``"none"``: start nothing.
        timeout: Seconds a daemon may take to answer.

    Returns:
        The embedded server if this call started one, None otherwise (an
        EPMD was already running, another one won the race to bind the
        port, or a daemon was started).

    Raises:
        EpmdUnavailable: ``mode`` is ``"none"`` and nothing answers, or the
            daemon did not come up.
    """
    port = default_epmd_port() if port is None else port
    if await _answers(host, port):
        return None
    if mode == "none":
        raise EpmdUnavailable(f"no EPMD answers at {host}:{port} (and epmd='none')")
    if mode == "daemon":
        from otpy.dist._epmd_daemon import start_daemon

        cmd = await start_daemon(port)
        with trio.move_on_after(timeout):
            while not await _answers(host, port):
                await trio.sleep(0.02)
            return None
        raise EpmdUnavailable(f"started {' '.join(cmd)} but nothing answers at {host}:{port}")
    try:
        server: EmbeddedEpmd = await nursery.start(functools.partial(serve_epmd, host=host), port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return None
        raise
    return server
