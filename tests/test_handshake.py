"""The distribution handshake, against a real ``erl`` node and between our own machines.

The real-Erlang tests share one private ``epmd`` and one ``erl`` node per
module. The erl node's name starts with ``m_``; Python node names start with
``a_`` (they compare lower than erl's) or ``z_`` (higher), which decides who
wins a simultaneous connect. After a handshake the tests keep reading (and
discarding) erl's packets, as a real node would, while erl checks
``nodes()``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
import trio
from _dist_erl import Epmd, ErlNode, free_port, unique
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from otpy.dist import _epmd_io
from otpy.dist import _handshake as H
from otpy.dist import _handshake_io as HIO

COOKIE = "hs_cookie_42"


@pytest.fixture(scope="module")
def epmd() -> Iterator[Epmd]:
    daemon = Epmd()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def erl(epmd: Epmd) -> Iterator[ErlNode]:
    node = ErlNode(f"{unique('m_erl')}@localhost", COOKIE, epmd.port)
    yield node
    node.stop()


async def _drain(conn: HIO.DistConnection, lost: trio.Event | None = None) -> None:
    """Read and discard packets (ticks, control messages) until the connection ends."""
    try:
        while True:
            await conn.receive_packet()
    except HIO.ConnectionLost:
        if lost is not None:
            lost.set()


async def _erl_nodes(erl: ErlNode, kind: str = "") -> str:
    return await erl.aeval(f"nodes({kind}).")


async def _wait_gone(erl: ErlNode, node: str, kind: str = "") -> None:
    with trio.fail_after(5):
        while node in await _erl_nodes(erl, kind):
            await trio.sleep(0.02)


async def _erl_port(erl: ErlNode, epmd: Epmd) -> int:
    found = await _epmd_io.port_please(erl.node, epmd_port=epmd.port)
    assert found is not None
    return found[0]


# ------------------------------------------------- initiator against erl


async def test_initiator_connects_to_real_erl(
    nursery: trio.Nursery, epmd: Epmd, erl: ErlNode
) -> None:
    me = f"{unique('a_py')}@localhost"
    conn = await HIO.connect_to_node(
        erl.node, this_node=me, cookie=COOKIE, creation=4242, epmd_port=epmd.port
    )
    res = conn.result
    assert res.initiator and res.status == "ok"
    assert (res.this_node, res.peer_node) == (me, erl.node)
    assert res.peer_creation == int(await erl.aeval("erlang:system_info(creation)."))
    assert res.peer_flags & H.REQUIRED_FLAGS == H.REQUIRED_FLAGS
    assert res.peer_flags & H.DFLAG_MANDATORY_25_DIGEST
    # in effect: the intersection, so nothing we did not advertise
    assert res.flags == res.this_flags & res.peer_flags
    assert not res.has(H.DFLAG_FRAGMENTS) and not res.has(H.DFLAG_DIST_HDR_ATOM_CACHE)
    assert res.has(H.DFLAG_ALIAS | H.DFLAG_DIST_MONITOR | H.DFLAG_PUBLISHED) and res.published
    nursery.start_soon(_drain, conn)
    assert me in await _erl_nodes(erl)
    assert await erl.aeval(f"net_kernel:node_info('{me}', type).") == "{ok,normal}"
    await conn.aclose()
    await _wait_gone(erl, me)


async def test_initiator_hidden(nursery: trio.Nursery, epmd: Epmd, erl: ErlNode) -> None:
    me = f"{unique('a_hid')}@localhost"
    stream = await trio.open_tcp_stream("127.0.0.1", await _erl_port(erl, epmd))
    conn = await HIO.connect(
        stream, this_node=me, peer_node=erl.node, cookie=COOKIE, creation=5, hidden=True
    )
    assert not conn.result.published and not conn.result.this_flags & H.DFLAG_PUBLISHED
    nursery.start_soon(_drain, conn)
    assert me in await _erl_nodes(erl, "hidden")
    assert me not in await _erl_nodes(erl)
    await conn.aclose()
    await _wait_gone(erl, me, "hidden")


async def test_initiator_wrong_cookie_is_refused(epmd: Epmd, erl: ErlNode) -> None:
    me = f"{unique('a_bad')}@localhost"
    stream = await trio.open_tcp_stream("127.0.0.1", await _erl_port(erl, epmd))
    with pytest.raises(H.HandshakeAuthError, match="cookie"):
        await HIO.connect(
            stream, this_node=me, peer_node=erl.node, cookie="not-the-cookie", creation=5
        )
    assert me not in await _erl_nodes(erl, "connected")


async def test_erl_refuses_missing_mandatory_flags(epmd: Epmd, erl: ErlNode) -> None:
    me = f"{unique('a_old')}@localhost"
    stream = await trio.open_tcp_stream("127.0.0.1", await _erl_port(erl, epmd))
    flags = H.DEFAULT_FLAGS & ~H.DFLAG_MAP_TAG & ~H.DFLAG_MANDATORY_25_DIGEST
    with pytest.raises(H.HandshakeRejected) as info:
        await HIO.connect(
            stream, this_node=me, peer_node=erl.node, cookie=COOKIE, creation=5, flags=flags
        )
    assert info.value.status == "not_allowed" and info.value.by_peer
    assert me not in await _erl_nodes(erl, "connected")


async def test_alive_replaces_stale_connection(
    nursery: trio.Nursery, epmd: Epmd, erl: ErlNode
) -> None:
    me = f"{unique('a_alive')}@localhost"
    port = await _erl_port(erl, epmd)
    first = await HIO.connect(
        await trio.open_tcp_stream("127.0.0.1", port),
        this_node=me,
        peer_node=erl.node,
        cookie=COOKIE,
        creation=10,
    )
    first_lost = trio.Event()
    nursery.start_soon(_drain, first, first_lost)
    assert me in await _erl_nodes(erl)
    asked: list[str] = []

    def answer(peer: str) -> bool:
        asked.append(peer)
        return True

    second = await HIO.connect(
        await trio.open_tcp_stream("127.0.0.1", port),
        this_node=me,
        peer_node=erl.node,
        cookie=COOKIE,
        creation=11,
        on_alive=answer,
    )
    assert asked == [erl.node] and second.result.status == "alive"
    nursery.start_soon(_drain, second)
    with trio.fail_after(5):  # erl dropped the old connection for the new one
        await first_lost.wait()
    assert me in await _erl_nodes(erl)
    await second.aclose()
    await _wait_gone(erl, me)


async def test_alive_declined_keeps_old_connection(
    nursery: trio.Nursery, epmd: Epmd, erl: ErlNode
) -> None:
    me = f"{unique('a_keep')}@localhost"
    port = await _erl_port(erl, epmd)
    first = await HIO.connect(
        await trio.open_tcp_stream("127.0.0.1", port),
        this_node=me,
        peer_node=erl.node,
        cookie=COOKIE,
        creation=10,
    )
    first_lost = trio.Event()
    nursery.start_soon(_drain, first, first_lost)
    with pytest.raises(H.HandshakeRejected) as info:
        await HIO.connect(
            await trio.open_tcp_stream("127.0.0.1", port),
            this_node=me,
            peer_node=erl.node,
            cookie=COOKIE,
            creation=11,
            on_alive=lambda peer: False,
        )
    assert info.value.status == "alive" and not info.value.by_peer
    await first.send_tick()
    await trio.sleep(0.2)
    assert not first_lost.is_set()
    assert me in await _erl_nodes(erl)
    await first.aclose()
    await _wait_gone(erl, me)


# -------------------------------------------------- acceptor against erl


async def _listen_and_register(
    name: str, epmd: Epmd
) -> tuple[trio.SocketListener, _epmd_io.Registration]:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    reg = await _epmd_io.register(name, port, epmd_port=epmd.port)
    return listener, reg


async def test_acceptor_with_real_erl(nursery: trio.Nursery, epmd: Epmd, erl: ErlNode) -> None:
    alive = unique("z_acc")
    me = f"{alive}@localhost"
    listener, reg = await _listen_and_register(alive, epmd)
    results: list[HIO.DistConnection] = []
    decided: list[tuple[str, int]] = []

    def decide(peer: str, flags: int) -> str:
        decided.append((peer, flags))
        return "ok"

    async def serve() -> None:
        stream = await listener.accept()
        conn = await HIO.accept(
            stream, this_node=me, cookie=COOKIE, creation=reg.creation, decide_status=decide
        )
        results.append(conn)
        await _drain(conn)

    nursery.start_soon(serve)
    assert await erl.aeval(f"net_kernel:connect_node('{me}').") == "true"
    assert len(results) == 1
    res = results[0].result
    assert not res.initiator and res.status == "ok" and res.peer_node == erl.node
    assert decided == [(erl.node, res.peer_flags)]
    assert res.peer_creation == int(await erl.aeval("erlang:system_info(creation)."))
    assert me in await _erl_nodes(erl)
    await results[0].aclose()
    await _wait_gone(erl, me)
    await reg.aclose()
    await listener.aclose()


async def test_acceptor_wrong_cookie(nursery: trio.Nursery, epmd: Epmd, erl: ErlNode) -> None:
    alive = unique("z_badacc")
    me = f"{alive}@localhost"
    listener, reg = await _listen_and_register(alive, epmd)
    errors: list[BaseException] = []

    async def serve() -> None:
        stream = await listener.accept()
        try:
            await HIO.accept(stream, this_node=me, cookie="other-cookie", creation=reg.creation)
        except H.HandshakeError as exc:
            errors.append(exc)

    nursery.start_soon(serve)
    assert await erl.aeval(f"net_kernel:connect_node('{me}').") == "false"
    with trio.fail_after(5):  # erl may answer before our side has finished failing
        while not errors:
            await trio.sleep(0.01)
    assert len(errors) == 1 and isinstance(errors[0], H.HandshakeAuthError)
    assert "cookies differ" in str(errors[0])
    assert me not in await _erl_nodes(erl, "connected")
    await reg.aclose()
    await listener.aclose()


async def test_acceptor_refuses_with_not_allowed(
    nursery: trio.Nursery, epmd: Epmd, erl: ErlNode
) -> None:
    alive = unique("z_no")
    me = f"{alive}@localhost"
    listener, reg = await _listen_and_register(alive, epmd)
    errors: list[H.HandshakeRejected] = []

    async def serve() -> None:
        stream = await listener.accept()
        try:
            await HIO.accept(
                stream,
                this_node=me,
                cookie=COOKIE,
                creation=reg.creation,
                decide_status=lambda peer, flags: "not_allowed",
            )
        except H.HandshakeRejected as exc:
            errors.append(exc)

    nursery.start_soon(serve)
    assert await erl.aeval(f"net_kernel:connect_node('{me}').") == "false"
    with trio.fail_after(5):
        while not errors:
            await trio.sleep(0.01)
    assert len(errors) == 1 and errors[0].status == "not_allowed" and not errors[0].by_peer
    await reg.aclose()
    await listener.aclose()


# ------------------------------------------- simultaneous connect vs erl


async def _simultaneous(
    nursery: trio.Nursery, epmd: Epmd, erl: ErlNode, prefix: str
) -> tuple[str, H.Acceptor, trio.SocketStream, int, list[str]]:
    """erl starts connecting to us; we read its name and hold the answer."""
    alive = unique(prefix)
    me = f"{alive}@localhost"
    listener, reg = await _listen_and_register(alive, epmd)
    erl_result: list[str] = []
    held: list[tuple[H.Acceptor, trio.SocketStream]] = []
    got_name = trio.Event()

    async def erl_connects() -> None:
        erl_result.append(await erl.aeval(f"net_kernel:connect_node('{me}')."))

    async def hold() -> None:
        stream = await listener.accept()
        machine = H.Acceptor(me, COOKIE, creation=reg.creation)
        events: list[H.Event] = []
        while not events:
            events = machine.receive_data(bytes(await stream.receive_some(4096)))
        assert isinstance(events[0], H.NameReceived) and events[0].peer_node == erl.node
        held.append((machine, stream))
        got_name.set()

    nursery.start_soon(hold)
    nursery.start_soon(erl_connects)
    with trio.fail_after(10):
        await got_name.wait()
    machine, stream = held[0]
    return me, machine, stream, reg.creation, erl_result


async def test_simultaneous_connect_lower_name_gets_nok(
    nursery: trio.Nursery, epmd: Epmd, erl: ErlNode
) -> None:
    me, held, stream, creation, erl_result = await _simultaneous(nursery, epmd, erl, "a_sim")
    assert H.simultaneous_status(erl.node, me) == "nok"  # erl's name is greater
    with pytest.raises(H.HandshakeRejected) as info:
        await HIO.connect(
            await trio.open_tcp_stream("127.0.0.1", await _erl_port(erl, epmd)),
            this_node=me,
            peer_node=erl.node,
            cookie=COOKIE,
            creation=creation,
        )
    assert info.value.status == "nok" and info.value.by_peer
    # erl's own attempt wins: finish it
    held.send_status("ok")
    with trio.fail_after(5):
        while not held.done:
            await stream.send_all(held.data_to_send())
            held.receive_data(bytes(await stream.receive_some(4096)))
        await stream.send_all(held.data_to_send())
    with trio.fail_after(5):
        while not erl_result:
            await trio.sleep(0.02)
    assert erl_result == ["true"]
    assert me in await _erl_nodes(erl)
    await stream.aclose()
    await _wait_gone(erl, me)


async def test_simultaneous_connect_higher_name_wins(
    nursery: trio.Nursery, epmd: Epmd, erl: ErlNode
) -> None:
    me, _held, stream, creation, erl_result = await _simultaneous(nursery, epmd, erl, "z_sim")
    assert H.simultaneous_status(erl.node, me) == "ok_simultaneous"
    conn = await HIO.connect(
        await trio.open_tcp_stream("127.0.0.1", await _erl_port(erl, epmd)),
        this_node=me,
        peer_node=erl.node,
        cookie=COOKIE,
        creation=creation,
    )
    assert conn.result.status == "ok_simultaneous"
    nursery.start_soon(_drain, conn)
    with trio.fail_after(5):  # erl abandoned its own attempt
        assert await stream.receive_some(100) == b""
        while not erl_result:
            await trio.sleep(0.02)
    assert erl_result == ["true"]
    assert me in await _erl_nodes(erl)
    await conn.aclose()
    await _wait_gone(erl, me)


async def test_digest_matches_erlang(erl: ErlNode) -> None:
    for challenge in (0, 1, 123456789, 2**32 - 1):
        got = await erl.aeval(
            f'binary_to_list(erlang:md5(["{COOKIE}"|integer_to_list({challenge})])).'
        )
        assert got == str(list(H.gen_digest(challenge, COOKIE))).replace(" ", "")


# ------------------------------------------------------------ trio layer


async def test_handshake_timeout_closes_stream(nursery: trio.Nursery) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    peer_eof = trio.Event()

    async def silent_peer() -> None:
        stream = await listener.accept()
        while await stream.receive_some(100):  # never answers
            pass
        peer_eof.set()

    nursery.start_soon(silent_peer)
    stream = await trio.open_tcp_stream("127.0.0.1", listener.socket.getsockname()[1])
    start = trio.current_time()
    with pytest.raises(H.HandshakeTimeout, match="await_status"):
        await HIO.connect(
            stream, this_node="a@h", peer_node="b@h", cookie="c", creation=1, timeout=0.3
        )
    assert 0.25 < trio.current_time() - start < 2
    with trio.fail_after(2):
        await peer_eof.wait()  # we closed our end


async def test_python_to_python_over_tcp_with_trailing_packets(nursery: trio.Nursery) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    accepted: list[HIO.DistConnection] = []

    async def server() -> None:
        conn = await HIO.accept(await listener.accept(), this_node="b@h", cookie="k", creation=7)
        accepted.append(conn)
        await conn.send_packet(b"hello")
        await conn.send_tick()

    nursery.start_soon(server)
    stream = await trio.open_tcp_stream("127.0.0.1", listener.socket.getsockname()[1])
    conn = await HIO.connect(stream, this_node="a@h", peer_node="b@h", cookie="k", creation=9)
    assert await conn.receive_packet() == b"hello"
    assert await conn.receive_packet() == b""
    assert conn.peer_creation == 7 and accepted[0].peer_creation == 9
    await accepted[0].aclose()
    with pytest.raises(HIO.ConnectionLost):
        await conn.receive_packet()


async def test_connect_to_unregistered_node(epmd: Epmd) -> None:
    with pytest.raises(HIO.ConnectionLost, match="not registered"):
        await HIO.connect_to_node(
            f"{unique('nobody')}@localhost",
            this_node="a@localhost",
            cookie="c",
            creation=1,
            epmd_port=epmd.port,
        )
    with pytest.raises(_epmd_io.EpmdUnavailable):
        await HIO.connect_to_node(
            "x@localhost", this_node="a@localhost", cookie="c", creation=1, epmd_port=free_port()
        )


# ------------------------------------------------ sans-IO: both machines


def _run_pair(
    init: H.Initiator, acc: H.Acceptor, chunk: int, status: str = "ok"
) -> tuple[H.HandshakeResult | None, H.HandshakeResult | None]:
    """Wire the two machines together, delivering bytes ``chunk`` at a time."""
    a_res: H.HandshakeResult | None = None
    i_res: H.HandshakeResult | None = None
    for _ in range(20):
        for i in range(0, max(1, len(out := init.data_to_send())), chunk):
            for ev in acc.receive_data(out[i : i + chunk]) if out else []:
                if isinstance(ev, H.NameReceived):
                    acc.send_status(status)
                elif isinstance(ev, H.HandshakeComplete):
                    a_res = ev.result
        for i in range(0, max(1, len(out := acc.data_to_send())), chunk):
            for ev in init.receive_data(out[i : i + chunk]) if out else []:
                if isinstance(ev, H.AliveQuery):
                    init.answer_alive(True)
                elif isinstance(ev, H.HandshakeComplete):
                    i_res = ev.result
        if a_res and i_res:
            break
    return i_res, a_res


node_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}@[a-z][a-z0-9.-]{0,15}", fullmatch=True)
cookies = st.text(st.characters(min_codepoint=32, max_codepoint=255), min_size=1, max_size=40)


@settings(max_examples=150)
@given(
    node_names,
    node_names,
    cookies,
    cookies,
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(1, 30),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["ok", "ok_simultaneous", "alive"]),
)
def test_our_machines_agree_iff_cookies_match(
    a: str,
    b: str,
    cookie_a: str,
    cookie_b: str,
    crea_a: int,
    crea_b: int,
    chunk: int,
    hidden_a: bool,
    hidden_b: bool,
    status: str,
) -> None:
    init = H.Initiator(a, b, cookie_a, creation=crea_a, hidden=hidden_a)
    acc = H.Acceptor(b, cookie_b, creation=crea_b, hidden=hidden_b)
    if cookie_a == cookie_b:
        i_res, a_res = _run_pair(init, acc, chunk, status)
        assert i_res is not None and a_res is not None
        assert (i_res.peer_node, a_res.peer_node) == (b, a)
        assert (i_res.peer_creation, a_res.peer_creation) == (crea_b, crea_a)
        assert i_res.flags == a_res.flags
        assert i_res.published == a_res.published == (not hidden_a and not hidden_b)
        assert i_res.status == a_res.status == status
        assert init.trailing_data == acc.trailing_data == b""
    else:
        with pytest.raises(H.HandshakeAuthError):
            _run_pair(init, acc, chunk, status)
        assert acc.state is H.State.FAILED and not init.done
        # the initiator learns it when the acceptor closes
        with pytest.raises(H.HandshakeAuthError):
            init.receive_data(b"")


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_initiator_raises_only_handshake_errors(chunks: list[bytes]) -> None:
    for prefix in (b"", H.frame(b"sok"), H.frame(b"salive")):
        init = H.Initiator("a@h", "b@h", "c", creation=1)
        try:
            if prefix:
                init.receive_data(prefix)
            if init.state is H.State.AWAIT_ALIVE_ANSWER:
                init.answer_alive(True)
            for data in chunks:
                init.receive_data(data)
        except H.HandshakeError:
            assert init.state is H.State.FAILED
            with pytest.raises(H.HandshakeError):
                init.receive_data(b"x")


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=40), max_size=8), st.sampled_from(H.STATUSES))
def test_acceptor_raises_only_handshake_errors(chunks: list[bytes], status: str) -> None:
    for with_name in (False, True):
        acc = H.Acceptor("b@h", "c", creation=1)
        try:
            if with_name:
                peer = H.Initiator("a@h", "b@h", "c", creation=1)
                acc.receive_data(peer.data_to_send())
                acc.send_status(status)
            for data in chunks:
                for ev in acc.receive_data(data):
                    if isinstance(ev, H.NameReceived):
                        acc.send_status("ok")
        except H.HandshakeError:
            assert acc.state is H.State.FAILED


def _flip(data: st.DataObject, out: bytes) -> bytes:
    pos = data.draw(st.integers(0, len(out) - 1))
    return out[:pos] + bytes([out[pos] ^ data.draw(st.integers(1, 255))]) + out[pos + 1 :]


@settings(max_examples=200)
@given(st.data())
def test_corrupted_transcripts_fail_cleanly(data: st.DataObject) -> None:
    """Flip one byte somewhere in a valid exchange: a typed error or success, nothing else."""
    init = H.Initiator("a@h", "b@h", "c", creation=1, challenge=5)
    acc = H.Acceptor("b@h", "c", creation=2, challenge=6)
    target = data.draw(st.sampled_from(["init", "acc"]))
    step = data.draw(st.integers(0, 2))
    try:
        for n in range(3):
            out = init.data_to_send()
            if target == "init" and n == step and out:
                out = _flip(data, out)
            for ev in acc.receive_data(out) if out else []:
                if isinstance(ev, H.NameReceived):
                    acc.send_status("ok")
            out = acc.data_to_send()
            if target == "acc" and n == step and out:
                out = _flip(data, out)
            if out:
                init.receive_data(out)
    except H.HandshakeError:
        return


def test_acceptor_handles_old_name_and_complement() -> None:
    acc = H.Acceptor("b@h", "c", creation=2, challenge=77)
    flags = H.DEFAULT_FLAGS
    old_name = struct.pack(">cHI", b"n", 5, flags & 0xFFFFFFFF) + b"a@h"
    (ev,) = acc.receive_data(H.frame(old_name))
    assert isinstance(ev, H.NameReceived) and ev.peer_creation is None
    acc.send_status("ok")
    out = acc.data_to_send()
    assert out.startswith(H.frame(b"sok"))
    challenge_pkt = out[len(H.frame(b"sok")) + 2 :]
    assert challenge_pkt[:1] == b"N"
    assert struct.unpack_from(">I", challenge_pkt, 9)[0] == 77
    complement = struct.pack(">cII", b"c", flags >> 32, 99)
    reply = struct.pack(">cI", b"r", 1234) + H.gen_digest(77, "c")
    (done,) = acc.receive_data(H.frame(complement) + H.frame(reply) + b"\x00\x00\x00\x00")
    assert isinstance(done, H.HandshakeComplete)
    assert done.result.peer_creation == 99 and done.result.peer_flags & H.DFLAG_V4_NC
    assert acc.data_to_send() == H.frame(b"a" + H.gen_digest(1234, "c"))
    assert acc.trailing_data == b"\x00\x00\x00\x00"


def test_acceptor_refuses_version_5_only_and_missing_flags() -> None:
    acc = H.Acceptor("b@h", "c", creation=2)
    v5_flags = H.DEFAULT_FLAGS & ~H.DFLAG_HANDSHAKE_23 & ~H.DFLAG_MANDATORY_25_DIGEST
    no23 = struct.pack(">cHI", b"n", 5, v5_flags & 0xFFFFFFFF)
    with pytest.raises(H.HandshakeFlagsError) as info:
        acc.receive_data(H.frame(no23 + b"a@h"))
    assert info.value.missing == ["HANDSHAKE_23"]
    assert acc.data_to_send() == H.frame(b"snot_allowed")

    acc = H.Acceptor("b@h", "c", creation=2)
    weak = H.Initiator("a@h", "b@h", "c", creation=1, flags=H.DFLAG_HANDSHAKE_23)
    with pytest.raises(H.HandshakeFlagsError) as info:
        acc.receive_data(weak.data_to_send())
    assert "MAP_TAG" in info.value.missing and "V4_NC" in info.value.missing
    assert acc.data_to_send() == H.frame(b"snot_allowed")

    # the OTP 25 digest flag stands for all the 25 flags, but not the 26 ones
    acc = H.Acceptor("b@h", "c", creation=2)
    digest_only = H.DFLAG_MANDATORY_25_DIGEST | H.MANDATORY_FLAGS_26
    ok = H.Initiator("a@h", "b@h", "c", creation=1, flags=digest_only)
    (ev,) = acc.receive_data(ok.data_to_send())
    assert isinstance(ev, H.NameReceived)
    assert ev.peer_flags & H.MANDATORY_FLAGS_25 == H.MANDATORY_FLAGS_25


def test_initiator_status_outcomes() -> None:
    for status, error in [
        ("nok", H.HandshakeRejected),
        ("not_allowed", H.HandshakeRejected),
        ("named:", H.HandshakeProtocolError),
        ("bogus", H.HandshakeProtocolError),
    ]:
        init = H.Initiator("a@h", "b@h", "c", creation=1)
        with pytest.raises(error):
            init.receive_data(H.frame(b"s" + status.encode()))
    init = H.Initiator("a@h", "b@h", "c", creation=1)
    init.data_to_send()
    assert init.receive_data(H.frame(b"salive")) == [
        H.StatusReceived("alive"),
        H.AliveQuery("b@h"),
    ]
    with pytest.raises(H.HandshakeRejected):
        init.answer_alive(False)
    assert init.data_to_send() == H.frame(b"sfalse")


def test_initiator_checks_peer_name_in_challenge() -> None:
    init = H.Initiator("a@h", "b@h", "c", creation=1)
    impostor = H.Acceptor("x@h", "c", creation=2)
    impostor.receive_data(init.data_to_send())
    impostor.send_status("ok")
    with pytest.raises(H.HandshakeProtocolError, match="calls itself"):
        init.receive_data(impostor.data_to_send())


def test_acceptor_alive_false_and_data_during_decision() -> None:
    init = H.Initiator("a@h", "b@h", "c", creation=1)
    acc = H.Acceptor("b@h", "c", creation=2)
    acc.receive_data(init.data_to_send())
    acc.send_status("alive")
    init.receive_data(acc.data_to_send())
    with pytest.raises(H.HandshakeRejected):
        init.answer_alive(False)
    with pytest.raises(H.HandshakeRejected) as info:
        acc.receive_data(init.data_to_send())
    assert info.value.by_peer and info.value.status == "alive"

    acc = H.Acceptor("b@h", "c", creation=2)
    name = H.Initiator("a@h", "b@h", "c", creation=1).data_to_send()
    with pytest.raises(H.HandshakeProtocolError, match="before the status"):
        acc.receive_data(name + b"\x00")


def test_simultaneous_rule_and_names() -> None:
    assert H.simultaneous_status("b@h", "a@h") == "nok"
    assert H.simultaneous_status("a@h", "b@h") == "ok_simultaneous"
    assert H.split_node("py1@localhost") == ("py1", "localhost")
    for bad in ["nohost", "@h", "n@", "a@b@c"]:
        with pytest.raises(ValueError):
            H.split_node(bad)
    with pytest.raises(ValueError):
        H.Initiator("bad", "b@h", "c", creation=1)
    with pytest.raises(ValueError):
        H.Acceptor("a@h", "c", creation=-1)
    with pytest.raises(ValueError):
        H.Acceptor("a@h", "cookie\u20ac", creation=1)
    assert "MANDATORY_25_DIGEST" in H.flag_names(H.DEFAULT_FLAGS)
    assert H.flag_names(1 << 40) == ["bit40"]


@given(st.lists(st.binary(max_size=300), max_size=6), st.sampled_from([2, 4]), st.integers(1, 50))
def test_packet_framing_round_trip(packets: list[bytes], header: int, chunk: int) -> None:
    data = b"".join(H.frame(p, header) for p in packets)
    dec = H.PacketDecoder(header)
    out = []
    for i in range(0, len(data), chunk):
        dec.feed(data[i : i + chunk])
        while (p := dec.next_packet()) is not None:
            out.append(p)
    assert out == packets and dec.buffered == 0


@given(st.integers(0, 2**32 - 1), cookies)
def test_digest_is_md5_of_cookie_and_decimal_challenge(challenge: int, cookie: str) -> None:
    import hashlib

    assume(cookie)
    expected = hashlib.md5((cookie + str(challenge)).encode("latin-1")).digest()
    assert H.gen_digest(challenge, cookie) == expected
    assert len({H.gen_challenge() for _ in range(8)}) > 1
