"""Distribution across real OS processes: Python<->Python and Python<->erl.

The test process is itself a distributed node (``open_node(node=...)``); its
peers are separate processes: ``tests/_py_node.py`` and real ``erl`` nodes,
all registered with a private ``epmd`` on a free port.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _dist_erl import Epmd, ErlNode, unique

import otpy
from otpy import Atom, Down, Exit
from otpy._process import current
from otpy.testing import make_test_certificates

HERE = Path(__file__).resolve().parent
COOKIE = "dist-test-cookie"
TICK = 1.0  # net tick time used by every node in these tests


class PyNode:
    """``tests/_py_node.py`` in its own OS process."""

    def __init__(self, epmd_port: int, cookie: str = COOKIE, tls_dir: Path | None = None) -> None:
        self.name = f"{unique('py')}@localhost"
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_py_node.py"), self.name, cookie, str(epmd_port),
             str(TICK), *([str(tls_dir)] if tls_dir else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=HERE, env=dict(os.environ, PYTHONPATH=str(HERE)),
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        for raw in self.proc.stdout:
            if raw.startswith(b"@@READY"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("peer node did not start")
        else:
            raise RuntimeError("peer node exited before it was ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(5)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def epmd() -> Iterator[Epmd]:
    server = Epmd()
    yield server
    server.stop()


@pytest.fixture
def py_peer(epmd: Epmd) -> Iterator[PyNode]:
    peer = PyNode(epmd.port)
    yield peer
    peer.stop()


@pytest.fixture
def erl_peer(epmd: Epmd) -> Iterator[ErlNode]:
    node = ErlNode(f"{unique('erl')}@localhost", COOKIE, epmd.port,
                   extra_args=("-kernel", "net_ticktime", str(int(TICK * 4))))
    yield node
    node.stop()


def our_node(epmd: Epmd, **kw: Any) -> Any:
    kw.setdefault("net_ticktime", TICK)
    return otpy.open_node(node=f"{unique('test')}@localhost", cookie=kw.pop("cookie", COOKIE),
                          epmd_port=epmd.port, rpc_allow=["json:dumps", "operator:*"], **kw)


class Local(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return ("local", request)


async def wait_for(pred: Any, timeout: float = 5.0) -> Any:
    with trio.fail_after(timeout):
        while not (value := await pred()):
            await trio.sleep(0.05)
    return value


# ---------------------------------------------------------- Python <-> Python


async def test_py_send_call_both_ways_and_rpc(epmd: Epmd, py_peer: PyNode) -> None:
    async with our_node(epmd):
        peer = py_peer.name
        assert await otpy.connect(peer) is True
        assert peer in otpy.nodes()
        reply = await otpy.call(("echo", peer), {"k": [1, 2.5, (Atom("a"), "s")]})
        assert reply == ("echo", {"k": [1, 2.5, (Atom("a"), "s")]}, peer)
        # the other way: the peer calls a server on our node
        await Local.start(name="local")
        assert await otpy.rpc.call(peer, "_py_node", "call_back", [otpy.node(), "local", 7]) \
            == ("local", 7)
        # rpc to allowed functions, sync and async; refused and failing ones
        assert await otpy.rpc.call(peer, "_py_node", "add", [2, 3]) == 5
        assert await otpy.rpc.call(peer, "_py_node", "slow_add", [2, 3]) == 5
        with pytest.raises(otpy.rpc.RPCError) as info:
            await otpy.rpc.call(peer, "os", "getcwd", [])
        assert info.value.reason == (Atom("EXIT"), (Atom("not_allowed"), Atom("os"),
                                                    Atom("getcwd")))
        with pytest.raises(otpy.rpc.RPCError) as info:
            await otpy.rpc.call(peer, "_py_node", "fail", [])
        assert "failed on purpose" in str(info.value.reason)
        # a remote crash inside handle_call: typed, at once
        with pytest.raises(otpy.CallError) as cinfo:
            await otpy.call(("echo", peer), "crash")
        assert isinstance(cinfo.value.reason, otpy.Crash)
        assert "echo crashed" in str(cinfo.value.reason.exception)
        # a call to a name nobody holds there
        with pytest.raises(otpy.CallError) as cinfo:
            await otpy.call(("nobody", peer), 1)
        assert cinfo.value.reason == otpy.NoProc()


async def test_py_large_and_concurrent_calls(epmd: Epmd, py_peer: PyNode) -> None:
    async with our_node(epmd):
        peer = py_peer.name
        # Messages much larger than one read: packets split across many reads
        # both ways, and several packets in one read.
        big = bytes(range(256)) * 12_000
        many = list(range(40_000))
        assert await otpy.call(("echo", peer), (big, many)) == ("echo", (big, many), peer)

        async def caller(k: int) -> list[Any]:
            return [await otpy.call(("echo", peer), (k, i)) for i in range(20)]

        tasks = [otpy.Task.async_(caller, k) for k in range(30)]
        results = [await otpy.Task.await_(t, timeout=30) for t in tasks]
        assert results == [[("echo", (k, i), peer) for i in range(20)] for k in range(30)]
        # A request that cannot be encoded fails before anything is sent: no
        # monitor, no alias left behind, and the next call works.
        proc = current()
        with pytest.raises(TypeError, match="cannot encode"):
            await otpy.call(("echo", peer), object())
        assert not proc.monitors and not proc.aliases
        assert await otpy.call(("echo", peer), 1) == ("echo", 1, peer)


async def test_py_links_and_monitors_across_nodes(epmd: Epmd, py_peer: PyNode) -> None:
    async with our_node(epmd):
        peer = py_peer.name
        otpy.trap_exits(True)
        otpy.send(("looper", peer), ("link", otpy.self()))
        _, looper = await otpy.receive(lambda m: m[0] == "linked", timeout=5)
        ref = otpy.monitor(looper)
        otpy.send(looper, ("exit", Atom("boom")))
        assert await otpy.receive(Exit, timeout=5) == Exit(looper, otpy.TermReason(Atom("boom")))
        down = await otpy.receive(Down, timeout=5)
        assert down.ref == ref and down.reason == otpy.TermReason(Atom("boom"))
        # monitoring something already dead over there: noproc
        ref = otpy.monitor(looper)
        assert (await otpy.receive(Down, timeout=5)).reason == otpy.NoProc()


async def test_py_remote_side_sees_our_exit_and_noconnection(epmd: Epmd,
                                                             py_peer: PyNode) -> None:
    async with our_node(epmd):
        peer = py_peer.name
        me = otpy.self()

        async def partner() -> None:
            otpy.send(("looper", peer), ("link", otpy.self()))
            otpy.send(me, await otpy.receive())
            await otpy.receive()  # until killed

        p = otpy.spawn(partner)
        _, _looper = await otpy.receive(timeout=5)
        otpy.exit(p, otpy.Shutdown("bye"))
        await wait_for(lambda: _events_are(peer, [["exit", "Shutdown"]]))

        # now a link and a monitor from there to here, then the connection drops
        otpy.send(("looper", peer), ("link", otpy.self()))
        await otpy.receive(timeout=5)
        otpy.send(("looper", peer), ("monitor", otpy.self()))
        await otpy.receive(timeout=5)
        otpy.trap_exits(True)
        assert otpy.disconnect(peer) is True
        msg = await otpy.receive(Exit, timeout=5)
        assert isinstance(msg.reason, otpy.NoConnection)
        assert peer not in otpy.nodes()
        # the next request reconnects, and the peer saw noconnection on its side
        expected = [["exit", "Shutdown"], ["exit", "NoConnection"], ["down", "NoConnection"]]
        await wait_for(lambda: _events_are(peer, expected))


async def _events_are(peer: str, expected: list[Any]) -> bool:
    got = await otpy.rpc.call(peer, "_py_node", "events", [], timeout=5)
    return [list(e) for e in got] == expected


async def test_py_kill_9_gives_noconnection_at_once(epmd: Epmd, py_peer: PyNode) -> None:
    async with our_node(epmd):
        peer = py_peer.name
        otpy.trap_exits(True)
        otpy.send(("looper", peer), ("link", otpy.self()))
        _, looper = await otpy.receive(timeout=5)
        ref = otpy.monitor(("echo", peer))
        otpy.monitor_node(peer)
        t0 = time.monotonic()
        py_peer.proc.send_signal(signal.SIGKILL)
        exit_msg = await otpy.receive(Exit, timeout=TICK * 2)
        down = await otpy.receive(Down, timeout=1)
        node_down = await otpy.receive(otpy.NodeDown, timeout=1)
        assert time.monotonic() - t0 < TICK * 1.5
        assert exit_msg.pid == looper and isinstance(exit_msg.reason, otpy.NoConnection)
        assert down.ref == ref and down.pid == ("echo", peer)
        assert isinstance(down.reason, otpy.NoConnection)
        assert node_down == otpy.NodeDown(peer)
        assert peer not in otpy.nodes()
        # a call to a dead node fails with a typed reason, not a hang
        with pytest.raises(otpy.CallError) as info:
            await otpy.call(("echo", peer), 1, timeout=10)
        assert isinstance(info.value.reason, otpy.NoConnection)


async def test_py_silent_peer_is_dropped_within_the_tick_time(epmd: Epmd,
                                                              py_peer: PyNode) -> None:
    async with our_node(epmd):
        peer = py_peer.name
        ref = otpy.monitor(("echo", peer))
        assert await otpy.call(("echo", peer), 1)
        py_peer.proc.send_signal(signal.SIGSTOP)  # no FIN, no ticks: only the timeout
        try:
            t0 = time.monotonic()
            down = await otpy.receive(Down, timeout=TICK * 3)
            elapsed = time.monotonic() - t0
        finally:
            py_peer.proc.send_signal(signal.SIGCONT)
        assert down.ref == ref and isinstance(down.reason, otpy.NoConnection)
        assert TICK * 0.7 <= elapsed <= TICK * 1.6


async def test_global_names_across_nodes_and_partition_heal(epmd: Epmd,
                                                            py_peer: PyNode) -> None:
    async with our_node(epmd):
        peer = py_peer.name
        name = otpy.Global("singleton")
        holder = otpy.spawn(otpy.receive)
        otpy.register(name, holder)
        assert otpy.whereis(name) == holder
        assert await otpy.rpc.call(peer, "_py_node", "global_whereis", ["singleton"]) == holder
        with pytest.raises(otpy.rpc.RPCError):  # taken: the peer cannot have it too
            await otpy.rpc.call(peer, "_py_node", "global_register", ["singleton"])
        # the holder exits: the name is free everywhere
        otpy.exit(holder, otpy.Kill())
        await wait_for(lambda: _global_free(peer, "singleton"))
        # partition: each side registers "dup" while they are disconnected
        theirs = await otpy.rpc.call(peer, "_py_node", "global_register", ["elsewhere"])
        await wait_for(lambda: _here_is("elsewhere", theirs))  # the news travels async
        await otpy.rpc.call(peer, "_py_node", "global_register_later", ["dup", 0.3])
        otpy.disconnect(peer)
        assert otpy.whereis(otpy.Global("elsewhere")) is None  # dropped with the node
        ours, ref = otpy.spawn_monitor(otpy.receive)
        otpy.register(otpy.Global("dup"), ours)
        await trio.sleep(0.6)  # meanwhile the peer registered its own "dup"
        assert await otpy.connect(peer)  # the partition heals
        theirs = await wait_for(lambda: _peer_holder(peer, "dup", not_pid=ours))
        # both sides agree: the holder on the node whose name sorts first keeps it
        winner = min((ours, theirs), key=lambda p: p.node.name)
        loser = theirs if winner == ours else ours
        await wait_for(lambda: _here_is("dup", winner))
        assert await otpy.rpc.call(peer, "_py_node", "global_whereis", ["dup"]) == winner
        if loser == ours:
            down = await otpy.receive(Down, timeout=5)
            assert down.ref == ref and down.reason == otpy.Killed()
        else:
            assert otpy.is_alive(ours)


async def _peer_holder(peer: str, name: str, not_pid: otpy.Pid) -> Any:
    # the peer's own holder, as the peer saw it before the sync reached it
    pid = await otpy.rpc.call(peer, "_py_node", "global_holder_here", [name])
    return pid if pid is not None and pid != not_pid else None


async def _here_is(name: str, pid: otpy.Pid) -> bool:
    return otpy.whereis(otpy.Global(name)) == pid


async def _global_free(peer: str, name: str) -> bool:
    gone_here = otpy.whereis(otpy.Global(name)) is None
    return gone_here and await otpy.rpc.call(peer, "_py_node", "global_whereis", [name]) is None


async def _global_is(peer: str, name: str, pid: otpy.Pid) -> bool:
    return await otpy.rpc.call(peer, "_py_node", "global_whereis", [name]) == pid


async def test_garbage_after_the_handshake_drops_only_that_connection(
        epmd: Epmd, py_peer: PyNode) -> None:
    from otpy.dist._handshake_io import ConnectionLost, connect_to_node

    for garbage in (b"p\x83\x68\x03\x61", b"x-not-pass-through", b"p\x83\x6a\x83\x61\x01"):
        raw = await connect_to_node(py_peer.name, this_node=f"{unique('raw')}@localhost",
                                    cookie=COOKIE, creation=1, epmd_port=epmd.port)
        await raw.send_packet(garbage)
        with trio.fail_after(5), pytest.raises(ConnectionLost):
            while True:  # the peer drops us (ticks may arrive first)
                await raw.receive_packet()
    async with our_node(epmd):  # the peer is fine
        assert await otpy.call(("echo", py_peer.name), 1) == ("echo", 1, py_peer.name)


async def test_wrong_cookie_is_refused(epmd: Epmd, py_peer: PyNode,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with our_node(epmd, cookie="not-the-cookie"):
        assert await otpy.connect(py_peer.name) is False
        assert otpy.nodes() == []
        assert "cannot connect" in caplog.text
        assert "not-the-cookie" not in caplog.text  # never logged


async def test_connect_to_missing_node_is_false(epmd: Epmd) -> None:
    async with our_node(epmd):
        with trio.fail_after(10):
            assert await otpy.connect("nobody@localhost") is False


# ---------------------------------------------------------------- Python <-> erl


async def test_erl_calls_and_rpc_both_ways(epmd: Epmd, erl_peer: ErlNode) -> None:
    async with our_node(epmd):
        erl = erl_peer.node
        await Local.start(name="local")
        me = otpy.node()
        # erl -> Python: ping, gen_server:call, rpc:call
        assert await erl_peer.aeval(f"net_adm:ping('{me}').") == "pong"
        assert await erl_peer.aeval(
            f"gen_server:call({{local, '{me}'}}, {{hi, <<\"there\">>, 1.5}})"
            " =:= {<<\"local\">>, {hi, <<\"there\">>, 1.5}}.") == "true"
        assert await erl_peer.aeval(
            f"rpc:call('{me}', json, dumps, [[1,2]]) =:= <<\"[1, 2]\">>.") == "true"
        assert await erl_peer.aeval(f"rpc:call('{me}', operator, add, [40, 2]).") == "42"
        refused = await erl_peer.aeval(f"rpc:call('{me}', os, getcwd, []).")
        assert refused == "{badrpc,{'EXIT',{not_allowed,os,getcwd}}}"
        # Python -> erl: rpc and a gen_server (erl's own global_name_server answers calls)
        assert await otpy.rpc.call(erl, "lists", "seq", [1, 4]) == [1, 2, 3, 4]
        assert await otpy.rpc.call(erl, "erlang", "node", []) == Atom(erl)
        await erl_peer.aeval(
            "Srv = spawn(fun Loop() -> receive {'$gen_call', From, Req} -> "
            "gen_server:reply(From, {erl, Req}), Loop() end end), register(srv, Srv).")
        assert await otpy.call(("srv", erl), Atom("x")) == (Atom("erl"), Atom("x"))


async def test_erl_calls_processes_registered_as_true_false_undefined(
        epmd: Epmd, erl_peer: ErlNode) -> None:
    """In control messages (REG_SEND's name, MONITOR_P's target) these atoms are
    names, not the booleans and None they decode to in messages."""
    async with our_node(epmd):
        me = otpy.node()
        for name in ("true", "false", "undefined"):
            await Local.start(name=name)
            assert await erl_peer.aeval(
                f"gen_server:call({{{name}, '{me}'}}, {name}) =:= {{<<\"local\">>, {name}}}."
            ) == "true"
        # and the connection was not dropped on the way
        assert await erl_peer.aeval(f"lists:member('{me}', nodes()).") == "true"


async def test_hidden_node_is_not_in_erls_nodes(epmd: Epmd, erl_peer: ErlNode) -> None:
    async with our_node(epmd, hidden=True):
        assert await otpy.rpc.call(erl_peer.node, "erlang", "node", []) == Atom(erl_peer.node)
        me = otpy.node()
        assert await erl_peer.aeval(f"lists:member('{me}', nodes()).") == "false"
        assert await erl_peer.aeval(f"lists:member('{me}', nodes(hidden)).") == "true"


async def test_call_monitors_are_removed_on_the_server_side(epmd: Epmd,
                                                            erl_peer: ErlNode) -> None:
    async with our_node(epmd):
        erl = erl_peer.node
        await erl_peer.aeval(
            "S = spawn(fun Loop() -> receive {'$gen_call', From, Req} -> "
            "gen_server:reply(From, Req), Loop() end end), register(mon_srv, S).")
        for i in range(3):
            assert await otpy.call(("mon_srv", erl), i) == i
        # by pid as well (SEND instead of REG_SEND)
        pid = await otpy.rpc.call(erl, "erlang", "whereis", [Atom("mon_srv")])
        assert isinstance(pid, otpy.Pid)
        assert await otpy.call(pid, Atom("by_pid")) == Atom("by_pid")
        # the demonitor after each call is sent lazily (with the next packet, or
        # by the writer when idle): it still arrives
        for _ in range(50):
            info = await erl_peer.aeval("process_info(whereis(mon_srv), monitored_by).")
            if info == "{monitored_by,[]}":
                break
            await trio.sleep(0.05)
        assert info == "{monitored_by,[]}"


async def test_erl_late_reply_is_dropped(epmd: Epmd, erl_peer: ErlNode) -> None:
    async with our_node(epmd):
        erl = erl_peer.node
        await erl_peer.aeval(
            "Slow = spawn(fun Loop() -> receive {'$gen_call', From, Req} -> timer:sleep(500),"
            " gen_server:reply(From, Req), Loop() end end), register(slow, Slow).")
        with pytest.raises(otpy.CallError) as info:
            await otpy.call(("slow", erl), 1, timeout=0.1)
        assert info.value.reason == otpy.Timeout()
        await trio.sleep(0.8)
        with pytest.raises(otpy.Timeout):
            await otpy.receive(timeout=0)
        assert await otpy.call(("slow", erl), 2, timeout=5) == 2


async def test_erl_links_both_ways_and_kill(epmd: Epmd, erl_peer: ErlNode) -> None:
    async with our_node(epmd):
        erl = erl_peer.node
        otpy.trap_exits(True)
        me = otpy.self()
        otpy.register("me")
        await erl_peer.aeval(
            f"P = spawn(fun() -> process_flag(trap_exit, true), link(receive {{link, X}} -> X end),"
            f" {{me, '{otpy.node()}'}} ! {{ready, self()}},"
            f" receive M -> {{me, '{otpy.node()}'}} ! {{erl_saw, M}} end end), register(p, P).")
        otpy.send(("p", erl), (Atom("link"), me))
        _, erl_pid = await otpy.receive(lambda m: m[0] == Atom("ready"), timeout=5)
        # our side exits its link partner by exit/2 with a reason: erl traps it
        otpy.exit(erl_pid, otpy.Shutdown("from python"))
        saw = await otpy.receive(lambda m: m[0] == Atom("erl_saw"), timeout=5)
        assert saw[1] == (Atom("EXIT"), me, (Atom("shutdown"), "from python"))
        assert (await otpy.receive(Exit, timeout=5)).reason == otpy.Normal()
        # erl kills a linked non-trapping Python process: it dies with killed
        victim, ref = otpy.spawn_monitor(otpy.receive)
        await erl_peer.aeval(f"exit(binary_to_term({list(otpy_term(victim))!r}), kill).".replace(
            "[", "<<").replace("]", ">>"))
        down = await otpy.receive(Down, timeout=5)
        assert down.ref == ref and down.reason == otpy.Killed()


def otpy_term(value: Any) -> bytes:
    from otpy.dist._etf import term_to_binary

    return term_to_binary(value)


async def test_erl_kill_9_gives_noconnection_both_ways(epmd: Epmd, erl_peer: ErlNode) -> None:
    async with our_node(epmd):
        erl = erl_peer.node
        otpy.trap_exits(True)
        assert await otpy.connect(erl)
        ref = otpy.monitor(("kernel_sup", erl))
        t0 = time.monotonic()
        erl_peer.proc.send_signal(signal.SIGKILL)
        down = await otpy.receive(Down, timeout=TICK * 2)
        assert down.ref == ref and isinstance(down.reason, otpy.NoConnection)
        assert time.monotonic() - t0 < TICK * 1.5
        assert erl not in otpy.nodes()


async def test_erl_sees_noconnection_when_we_disconnect(epmd: Epmd, erl_peer: ErlNode) -> None:
    async with our_node(epmd):
        erl = erl_peer.node
        await erl_peer.aeval(
            "Self = self(), W = spawn(fun() -> process_flag(trap_exit, true),"
            " link(receive {link, P} -> P end), Self ! linked,"
            " receive M -> Self ! {got, M} end end), register(w, W).")
        otpy.send(("w", erl), (Atom("link"), otpy.self()))
        assert await erl_peer.aeval("receive linked -> ok after 5000 -> none end.") == "ok"
        otpy.trap_exits(True)  # the link fires here too: both sides see noconnection
        otpy.disconnect(erl)
        assert isinstance((await otpy.receive(Exit, timeout=5)).reason, otpy.NoConnection)
        got = await erl_peer.aeval("receive {got, M} -> M after 5000 -> none end.")
        assert got.startswith("{'EXIT',") and got.endswith(",noconnection}")


async def _connected(node: str) -> bool:
    return node in otpy.nodes()


# ----------------------------------------------------------------------- TLS


def make_certs(d: Path, ca_name: str = "otpy-test-ca") -> Path:
    """A CA and a node certificate for localhost / 127.0.0.1, signed by it."""
    make_test_certificates(d, ca_name=ca_name)
    return d


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("tls"))


def tls_of(d: Path) -> otpy.TLSConfig:
    return otpy.TLSConfig(str(d / "node.pem"), str(d / "node.key"), str(d / "ca.pem"))


async def test_tls_python_to_python_and_plain_refused(epmd: Epmd, certs: Path) -> None:
    peer = PyNode(epmd.port, tls_dir=certs)
    try:
        async with our_node(epmd, tls=tls_of(certs)):
            assert await otpy.call(("echo", peer.name), "over tls") == \
                ("echo", "over tls", peer.name)
            await Local.start(name="local")
            assert await otpy.rpc.call(peer.name, "_py_node", "call_back",
                                       [otpy.node(), "local", 1]) == ("local", 1)
        # a node without TLS cannot talk to the TLS node
        async with our_node(epmd):
            assert await otpy.connect(peer.name) is False
    finally:
        peer.stop()


async def test_tls_refuses_a_certificate_from_another_ca(epmd: Epmd, certs: Path,
                                                         tmp_path: Path) -> None:
    other = make_certs(tmp_path / "other", ca_name="intruder-ca")
    peer = PyNode(epmd.port, tls_dir=certs)
    try:
        async with our_node(epmd, tls=tls_of(other)):
            assert await otpy.connect(peer.name) is False
    finally:
        peer.stop()


async def test_tls_with_erl_inet_tls(epmd: Epmd, certs: Path) -> None:
    opts = certs / "ssl_dist.conf"
    pem, key, ca = certs / "node.pem", certs / "node.key", certs / "ca.pem"
    opts.write_text(
        f"[{{server, [{{certfile, \"{pem}\"}}, {{keyfile, \"{key}\"}}, "
        f"{{cacertfile, \"{ca}\"}}, {{verify, verify_peer}}, {{fail_if_no_peer_cert, true}}]}},"
        f" {{client, [{{certfile, \"{pem}\"}}, {{keyfile, \"{key}\"}}, "
        f"{{cacertfile, \"{ca}\"}}, {{verify, verify_peer}}]}}].\n")
    erl = ErlNode(f"{unique('erltls')}@localhost", COOKIE, epmd.port,
                  extra_args=("-proto_dist", "inet_tls", "-ssl_dist_optfile", str(opts)))
    try:
        async with our_node(epmd, tls=tls_of(certs)):
            me = otpy.node()
            await Local.start(name="local")
            # Python -> erl over TLS
            assert await otpy.rpc.call(erl.node, "erlang", "node", []) == Atom(erl.node)
            # erl -> Python over TLS
            assert await erl.aeval(
                f"gen_server:call({{local, '{me}'}}, ping) =:= {{<<\"local\">>, ping}}.") \
                == "true"
            # and erl says the connection is a TLS one
            info = await erl.aeval(f"element(2, net_kernel:node_info('{me}')).")
            assert ",tls," in info
    finally:
        erl.stop()


def test_registered_reasons_round_trip_typed_and_others_stay_terms() -> None:
    import attrs

    from otpy.dist._control import reason_to_term, term_to_reason
    from otpy.dist._etf import binary_to_term, term_to_binary

    @otpy.register_reason
    @attrs.frozen
    class Gone(otpy.ExitReason):
        status: int
        why: str

    wire = binary_to_term(term_to_binary(reason_to_term(Gone(137, "killed"))))
    assert term_to_reason(wire) == Gone(137, "killed")
    unknown = (Atom("otpy_reason"), "nowhere.Nothing", {"a": 1})
    assert term_to_reason(unknown) == otpy.TermReason(unknown)
    with pytest.raises(TypeError):
        otpy.register_reason(int)  # type: ignore[type-var]


def test_calling_self_crosses_as_erlangs_atom() -> None:
    from otpy.dist._control import reason_to_term, term_to_reason

    assert reason_to_term(otpy.CallingSelf()) is Atom("calling_self")
    assert term_to_reason(Atom("calling_self")) == otpy.CallingSelf()


async def test_typed_values_cross_and_unencodable_ones_fail_only_their_call(
        epmd: Epmd, py_peer: PyNode) -> None:
    """Issue 16: registered classes (here otpy's own: Down, Crash, reasons)
    cross typed both ways; an unencodable request raises at the sender with
    the path; an unencodable reply fails that call, not the server."""
    async with our_node(epmd):
        peer = py_peer.name
        try:
            raise KeyError("lost")
        except KeyError as exc:
            crash = otpy.Crash(exc)
        value = [otpy.Down(otpy.Ref.make(Atom(otpy.node()), 1), otpy.self(), crash),
                 otpy.Shutdown("bye"), otpy.Timeout()]
        reply = await otpy.call(("echo", peer), value)
        down, shutdown, timeout = reply[1]
        assert isinstance(down, otpy.Down) and down.pid == otpy.self()
        assert isinstance(down.reason.exception, otpy.RemoteError)
        assert down.reason.exception.type_name == "KeyError"
        assert (shutdown, timeout) == (otpy.Shutdown("bye"), otpy.Timeout())
        with pytest.raises(otpy.ETFEncodeError) as info:
            await otpy.call(("echo", peer), {"fine": 1, "bad": object()})
        assert info.value.path == "term['bad']"  # the request
        with pytest.raises(otpy.CallError) as failed:
            await otpy.call(("echo", peer), "unencodable")
        assert isinstance(failed.value.reason, otpy.Unencodable)
        assert "set" in failed.value.reason.detail
        assert (await otpy.call(("echo", peer), "still here"))[1] == "still here"
