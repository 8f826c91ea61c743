"""EPMD client and embedded server, against a real ``epmd`` and real ``erl`` nodes.

Every test uses a private EPMD port (never the system's 4369) and node names
with a random suffix. The sans-IO codec and server machine are also fuzzed
with hypothesis.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

import pytest
import trio
from _dist_erl import Epmd, ErlNode, free_port, unique
from hypothesis import given, settings
from hypothesis import strategies as st

from otpy.dist import _epmd as E
from otpy.dist import _epmd_io as io
from otpy.dist._handshake import default_host

COOKIE = "epmdtestcookie"


@pytest.fixture(scope="module")
def epmd() -> Iterator[Epmd]:
    daemon = Epmd()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def erl(epmd: Epmd) -> Iterator[ErlNode]:
    node = ErlNode(f"{unique('erl')}@localhost", COOKIE, epmd.port)
    yield node
    node.stop()


async def _wait_unregistered(name: str, epmd_port: int) -> None:
    with trio.fail_after(5):
        while await io.port_please(name, "127.0.0.1", epmd_port=epmd_port) is not None:
            await trio.sleep(0.02)


# ------------------------------------------------------- against real epmd


async def test_register_lookup_names_and_unregister(epmd: Epmd) -> None:
    name = unique("py")
    reg = await io.register(name, 40123, epmd_port=epmd.port)
    assert reg.creation >= 1
    assert reg.name == name
    found = await io.port_please(name, "localhost", epmd_port=epmd.port)
    assert found is not None
    port, info = found
    assert port == 40123
    assert (info.name, info.node_type, info.protocol) == (name, E.NODE_TYPE_NORMAL, 0)
    assert (info.highest_version, info.lowest_version) == (6, 6)
    assert (name, 40123) in await io.names("localhost", epmd_port=epmd.port)
    # the real epmd command line client sees it too
    assert f"name {name} at port 40123" in epmd.names_cli()
    await reg.aclose()
    await _wait_unregistered(name, epmd.port)
    assert name not in dict(await io.names("127.0.0.1", epmd_port=epmd.port))


async def test_full_node_name_and_hidden_type(epmd: Epmd) -> None:
    name = unique("hid")
    async with await io.register(name, 40124, hidden=True, epmd_port=epmd.port):
        found = await io.port_please(f"{name}@localhost", epmd_port=epmd.port)
        assert found is not None
        assert found[1].node_type == E.NODE_TYPE_HIDDEN
        assert found[1].hidden


async def test_duplicate_registration_is_refused(epmd: Epmd) -> None:
    name = unique("dup")
    async with await io.register(name, 40125, epmd_port=epmd.port):
        with pytest.raises(E.EpmdRegistrationError) as info:
            await io.register(name, 40126, epmd_port=epmd.port)
        assert info.value.name == name
        found = await io.port_please(name, epmd_port=epmd.port)
        assert found is not None and found[0] == 40125


async def test_reregistration_gets_new_creation(epmd: Epmd) -> None:
    name = unique("cre")
    reg1 = await io.register(name, 40127, epmd_port=epmd.port)
    await reg1.aclose()
    await _wait_unregistered(name, epmd.port)
    async with await io.register(name, 40127, epmd_port=epmd.port) as reg2:
        assert reg2.creation != reg1.creation


async def test_unknown_name_and_missing_epmd(epmd: Epmd) -> None:
    assert await io.port_please(unique("nobody"), "localhost", epmd_port=epmd.port) is None
    with pytest.raises(io.EpmdUnavailable):
        await io.port_please("x", "127.0.0.1", epmd_port=free_port())
    with pytest.raises(io.EpmdUnavailable):
        await io.register("x", 1, epmd_port=free_port())


async def test_lookup_of_real_erl_node(epmd: Epmd, erl: ErlNode) -> None:
    alive = erl.node.split("@")[0]
    found = await io.port_please(erl.node, epmd_port=epmd.port)
    assert found is not None
    port, info = found
    assert info.name == alive and info.node_type == E.NODE_TYPE_NORMAL
    # OTP 25.2 registers versions 5..6 (the guide says 6..6 from OTP 25)
    assert info.highest_version == 6 and info.lowest_version in (5, 6)
    assert (alive, port) in await io.names("localhost", epmd_port=epmd.port)
    # erl's own view of its registration agrees with ours
    assert await erl.aeval(f'erl_epmd:port_please("{alive}", "localhost").') == f"{{port,{port},6}}"
    # and something really listens on that port
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.aclose()


async def test_erl_finds_python_registration(epmd: Epmd, erl: ErlNode) -> None:
    name = unique("pyreg")
    async with await io.register(name, 40128, epmd_port=epmd.port):
        got = await erl.aeval(f'erl_epmd:port_please("{name}", "localhost").')
        assert got == "{port,40128,6}"
        names = await erl.aeval("{ok, Ns} = net_adm:names(), [N || {N, _} <- Ns].")
        assert str([ord(c) for c in name]).replace(" ", "") in names
    await _wait_unregistered(name, epmd.port)
    assert await erl.aeval(f'erl_epmd:port_please("{name}", "localhost").') == "noport"


# ---------------------------------------------------- the embedded server


async def test_embedded_epmd_serves_real_erl(nursery: trio.Nursery) -> None:
    server: io.EmbeddedEpmd = await nursery.start(io.serve_epmd, 0)
    alive = unique("emb")
    # no host given: erl uses the short host name, like default_host()
    node = await trio.to_thread.run_sync(ErlNode, alive, COOKIE, server.port)
    try:
        assert node.node == f"{alive}@{default_host()}"
        info = server.registry.lookup(alive)
        assert info is not None and info.highest_version == 6
        found = await io.port_please(alive, "127.0.0.1", epmd_port=server.port)
        assert found is not None and found[0] == info.port

        py = unique("pyemb")
        async with await io.register(py, 40129, epmd_port=server.port) as reg:
            assert reg.creation >= 4
            got = await node.aeval(f'erl_epmd:port_please("{py}", "localhost").')
            assert got == "{port,40129,6}"
            names = await node.aeval("{ok, Ns} = net_adm:names(), lists:sort(Ns).")
            expected = sorted([(py, 40129), (alive, info.port)])
            assert (
                names
                == "["
                + ",".join(
                    "{" + str([ord(c) for c in n]).replace(" ", "") + f",{p}" + "}"
                    for n, p in expected
                )
                + "]"
            )
            # the real epmd CLI can read our NAMES response too
            cli = await trio.to_thread.run_sync(
                lambda: (
                    subprocess.run(
                        ["epmd", "-port", str(server.port), "-names"],
                        capture_output=True,
                        text=True,
                        timeout=10,
                        check=False,
                    ).stdout
                )
            )
            assert f"name {py} at port 40129" in cli
            assert f"name {alive} at port {info.port}" in cli
        await _wait_unregistered(py, server.port)
    finally:
        await trio.to_thread.run_sync(node.stop)
    with trio.fail_after(5):  # erl exited: its registration is gone
        while server.registry.lookup(alive) is not None:
            await trio.sleep(0.02)
    server.stop()


async def test_embedded_duplicate_and_kill(nursery: trio.Nursery) -> None:
    server: io.EmbeddedEpmd = await nursery.start(io.serve_epmd, 0)
    name = unique("k")
    async with await io.register(name, 5000, epmd_port=server.port):
        with pytest.raises(E.EpmdRegistrationError):
            await io.register(name, 5001, epmd_port=server.port)
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        await stream.send_all(E.encode_request(E.KillRequest()))
        assert await stream.receive_some(10) == b"NO"  # live nodes: refuse
        await stream.aclose()
    await _wait_unregistered(name, server.port)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    await stream.send_all(E.encode_request(E.KillRequest()))
    assert await stream.receive_some(10) == b"OK"
    await stream.aclose()
    with trio.fail_after(5):  # the server stopped listening
        while True:
            try:
                (await trio.open_tcp_stream("127.0.0.1", server.port)).socket.close()
            except OSError:
                break
            await trio.sleep(0.02)


async def test_embedded_closes_on_garbage(nursery: trio.Nursery) -> None:
    server: io.EmbeddedEpmd = await nursery.start(io.serve_epmd, 0)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    await stream.send_all(b"\x00\x03zzz\x00\x01\xff")
    with trio.fail_after(5):
        data = b""
        while chunk := await stream.receive_some(100):
            data += chunk
    # the valid PORT_PLEASE2 for "zz" got its negative answer, then garbage closed it
    assert data == bytes([E.PORT2_RESP, 1])
    server.stop()


async def test_ensure_epmd_starts_only_when_needed(nursery: trio.Nursery, epmd: Epmd) -> None:
    assert await io.ensure_epmd(nursery, epmd.port) is None  # a real one runs
    port = free_port()
    server = await io.ensure_epmd(nursery, port)
    assert server is not None and server.port == port
    assert await io.ensure_epmd(nursery, port) is None  # now ours answers
    async with await io.register(unique("e"), 7000, epmd_port=port) as reg:
        assert server.registry.lookup(reg.name) is not None
    server.stop()


def test_default_epmd_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERL_EPMD_PORT", "12345")
    assert io.default_epmd_port() == 12345
    monkeypatch.setenv("ERL_EPMD_PORT", "junk")
    assert io.default_epmd_port() == 4369
    monkeypatch.delenv("ERL_EPMD_PORT")
    assert io.default_epmd_port() == 4369


# ----------------------------------------------------------- sans-IO codec

names_st = st.text(
    st.characters(exclude_characters="@\x00", exclude_categories=["Cs"]),
    min_size=1,
    max_size=60,
)
node_info_st = st.builds(
    E.NodeInfo,
    name=names_st,
    port=st.integers(0, 65535),
    node_type=st.sampled_from([E.NODE_TYPE_NORMAL, E.NODE_TYPE_HIDDEN]),
    protocol=st.integers(0, 255),
    highest_version=st.integers(0, 65535),
    lowest_version=st.integers(0, 65535),
    extra=st.binary(max_size=255),
)
request_st = st.one_of(
    st.builds(E.Alive2Request, node_info_st),
    st.builds(E.PortPlease2Request, names_st),
    st.just(E.NamesRequest()),
    st.just(E.DumpRequest()),
    st.just(E.KillRequest()),
    st.builds(E.StopRequest, names_st),
)


@given(st.lists(request_st, max_size=5), st.integers(1, 40))
def test_requests_round_trip_in_any_chunking(requests: list[E.EpmdRequest], chunk: int) -> None:
    data = b"".join(E.encode_request(r) for r in requests)
    reader = E.RequestReader(max_size=65535)
    out: list[E.EpmdRequest] = []
    for i in range(0, len(data), chunk):
        out += reader.feed(data[i : i + chunk])
    assert out == requests
    assert reader.pending == 0


@given(node_info_st, st.binary(max_size=10))
def test_port2_response_round_trip(info: E.NodeInfo, tail: bytes) -> None:
    encoded = E.encode_port2_resp(info)
    for cut in range(len(encoded)):
        assert E.decode_port2_resp(encoded[:cut]) is None
    assert E.decode_port2_resp(encoded + tail) == (info, len(encoded))
    assert E.decode_port2_resp(E.encode_port2_resp(None)) == (None, 2)


@given(st.integers(0, 255), st.integers(0, 2**32 - 1), st.booleans())
def test_alive_response_round_trip(result: int, creation: int, extended: bool) -> None:
    resp = E.AliveResponse(result, creation if extended else creation & 0xFFFF, extended)
    encoded = E.encode_alive2_resp(resp)
    assert E.decode_alive2_resp(encoded[:-1]) is None
    assert E.decode_alive2_resp(encoded) == (resp, len(encoded))


@given(st.integers(0, 2**32 - 1), st.lists(st.tuples(names_st, st.integers(0, 65535))))
def test_names_response_round_trip(port: int, nodes: list[tuple[str, int]]) -> None:
    nodes = [(n, p) for n, p in nodes if "\n" not in n]
    resp = E.decode_names_resp(E.encode_names_resp(port, nodes))
    assert resp == E.NamesResponse(port, tuple(nodes))


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_decoders_raise_only_epmd_errors(data: bytes) -> None:
    for decode in (E.decode_alive2_resp, E.decode_port2_resp, E.decode_names_resp):
        with contextlib.suppress(E.EpmdProtocolError):
            decode(data)
    with contextlib.suppress(E.EpmdProtocolError):
        E.RequestReader().feed(data)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=80), max_size=6), st.lists(request_st, max_size=3))
def test_server_machine_survives_anything(chunks: list[bytes], valid: list[E.EpmdRequest]) -> None:
    registry = E.EpmdRegistry(epmd_port=4369)
    conn = E.EpmdServerConnection(registry)
    feed = [E.encode_request(r) for r in valid] + chunks
    for data in feed:
        try:
            reply = conn.receive_data(data)
        except E.EpmdProtocolError:
            assert conn.should_close
            break
        assert isinstance(reply, bytes)
    conn.connection_lost()
    assert registry.names() == []


def _alive(conn: E.EpmdServerConnection, info: E.NodeInfo) -> E.AliveResponse:
    parsed = E.decode_alive2_resp(conn.receive_data(E.encode_alive2_req(info)))
    assert parsed is not None
    return parsed[0]


def test_server_machine_registration_lifecycle() -> None:
    registry = E.EpmdRegistry(epmd_port=4369)
    a = E.EpmdServerConnection(registry)
    resp = _alive(a, E.NodeInfo("n1", 1234))
    assert resp.ok and resp.extended and resp.creation >= 4
    assert not a.should_close and a.registered == "n1"
    # an old (version 5) node gets the 16-bit answer with creation 1..3
    old = _alive(E.EpmdServerConnection(registry), E.NodeInfo("n0", 99, highest_version=5))
    assert not old.extended and 1 <= old.creation <= 3
    c = E.EpmdServerConnection(registry)
    found = E.decode_port2_resp(c.receive_data(E.encode_port_please2_req("n1")))
    assert found is not None and found[0] == E.NodeInfo("n1", 1234)
    assert c.should_close
    d = E.EpmdServerConnection(registry)
    names = E.decode_names_resp(d.receive_data(E.encode_names_req()))
    assert set(names.nodes) == {("n1", 1234), ("n0", 99)} and names.epmd_port == 4369
    # a taken name is refused and that connection closes
    taken = E.EpmdServerConnection(registry)
    assert not _alive(taken, E.NodeInfo("n1", 1)).ok and taken.should_close
    # the owner's connection going away unregisters, and the next incarnation
    # of the name gets a different creation
    assert a.connection_lost() == ["n1"]
    assert registry.lookup("n1") is None
    again = _alive(E.EpmdServerConnection(registry), E.NodeInfo("n1", 1))
    assert again.ok and again.creation != resp.creation and again.creation >= 4


def test_invalid_names_are_rejected_before_sending() -> None:
    for bad in ["", "a@b", "nul\x00", "x" * 256]:
        with pytest.raises(E.EpmdProtocolError):
            E.encode_port_please2_req(bad)
    with pytest.raises(E.EpmdProtocolError):
        E.encode_alive2_req(E.NodeInfo("ok", 70000))
