"""OTP's lib/stdlib/test/supervisor_SUITE.erl, ported to otpy's public API.

Each test names its OTP case in its docstring. ``simple_one_for_one`` cases
run on `otpy.DynamicSupervisor`, Elixir's replacement for it. Where otpy
deliberately differs from OTP the test asserts otpy's documented behaviour
and says why (the differences are listed in
docs/design/005-erlang-oracle-notes.md). Time runs on trio's MockClock.

Not ported (nothing in otpy's API to map them onto): sup_start_error_return
(a supervisor init returning a bad term), sup_start_map_simple /
get_callback_module (get_childspec, get_callback_module), extra_return's and
simple_one_for_one_extra's ``{ok, Pid, Info}``, faulty_application_shutdown
(applications), do_not_save_start_parameters_for_temporary_children
(sys:get_status memory sizes), code_change* (hot code upgrade),
simple_one_for_one_scale_many_temporary_children and
scale_start_stop_many_children (timings: bench/ territory), and OTP 24+'s
significant children / auto_shutdown cases.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from _otp_helpers import (
    Child,
    ErrorOnRestart,
    IgnoreFirst,
    check_exit,
    check_exit_reason,
    counts,
    dyn_counts,
    settle,
    spec,
    start_child,
    terminate,
    which,
)

import otpy
from otpy import (
    RESTARTING,
    ChildInfo,
    ChildSpec,
    Down,
    DynamicSupervisor,
    Exit,
    Supervisor,
    SupervisorError,
)

SUP = "sup_test"
Clock = trio.testing.MockClock


async def start_link(children: list[Any], strategy: str = "one_for_one", max_restarts: int = 2,
                     max_seconds: float = 3600) -> otpy.Pid:
    """supervisor_SUITE:start_link/1: a supervisor registered as sup_test."""
    return await Supervisor.start_link(children, strategy, max_restarts,  # type: ignore[arg-type]
                                       max_seconds, name=SUP)


async def start_error(coro: Any) -> otpy.ExitReason:
    """The reason of a start that must fail (and the Exit the caller traps)."""
    with pytest.raises(otpy.StartError) as info:
        await coro
    return info.value.reason


# ------------------------------------------------------------- sup_start


async def test_sup_start_normal(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_normal"""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([])
        await terminate(None, sup, None, otpy.Shutdown())
        await check_exit_reason(sup, otpy.Shutdown())


async def test_sup_start_ignore_init(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_ignore_init — a supervisor's init ignores:
    ``ignore`` is returned and the trapping caller gets ``EXIT normal``."""

    class IgnoringSupervisor(Supervisor):
        async def init(self, *args: Any) -> None:
            raise otpy.Ignore()

    async with otpy.open_node():
        otpy.trap_exits(True)
        with pytest.raises(otpy.Ignored):
            await IgnoringSupervisor.start_link([], name=SUP)
        msg = await otpy.receive(Exit, timeout=0)
        assert msg.reason == otpy.Normal()
        assert otpy.whereis(SUP) is None


async def test_sup_start_ignore_child(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_ignore_child — an ignored permanent child
    keeps its spec. Deliberate difference: `which_children` lists children
    in start order; erl lists the newest first (``[{child2,..},{child1,..}]``)."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        await start_link([])
        assert await Supervisor.start_child(SUP, spec("child1", IgnoreFirst())) is None
        cpid2 = await Supervisor.start_child(SUP, spec("child2"))
        assert await which(SUP) == [("child1", None, "worker", []),
                                    ("child2", cpid2, "worker", [])]
        assert await counts(SUP) == [2, 1, 0, 2]


async def test_sup_start_ignore_temporary_child(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_ignore_temporary_child — a temporary child
    that ignores its start at supervisor start is not kept."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        await start_link([spec("child1", IgnoreFirst(), "temporary"),
                          spec("child2", restart="temporary")])
        [(child_id, cpid2, kind, modules)] = await which(SUP)
        assert (child_id, kind, modules) == ("child2", "worker", [])
        assert isinstance(cpid2, otpy.Pid)
        assert await counts(SUP) == [1, 1, 0, 1]


async def test_sup_start_ignore_temporary_child_start_child(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_ignore_temporary_child_start_child"""
    async with otpy.open_node():
        otpy.trap_exits(True)
        await start_link([])
        assert await Supervisor.start_child(SUP, spec("child1", IgnoreFirst(), "temporary")) \
            is None
        cpid2 = await Supervisor.start_child(SUP, spec("child2", restart="temporary"))
        assert await which(SUP) == [("child2", cpid2, "worker", [])]
        assert await counts(SUP) == [1, 1, 0, 1]


@pytest.mark.parametrize("restart", ["temporary", "permanent"])
async def test_sup_start_ignore_child_start_child_simple(autojump_clock: Clock,
                                                         restart: str) -> None:
    """supervisor_SUITE:sup_start_ignore_temporary_child_start_child_simple and
    sup_start_ignore_permanent_child_start_child_simple — an ignored dynamic
    child is not kept, whatever its restart type; the supervisor then stops
    cleanly with ``shutdown``."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await DynamicSupervisor.start_link(max_restarts=2, max_seconds=3600, name=SUP)
        child = spec("child1", IgnoreFirst(), restart)
        assert await DynamicSupervisor.start_child(SUP, child) is None
        cpid2 = await DynamicSupervisor.start_child(SUP, child)
        assert await DynamicSupervisor.which_children(SUP) == [ChildInfo(None, cpid2, "worker",
                                                                         [])]
        assert await dyn_counts(SUP) == [1, 1, 0, 1]
        otpy.exit(sup, otpy.Shutdown())
        await check_exit_reason(sup, otpy.Shutdown())


async def test_sup_start_fail(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_fail — init crashes: the start fails with
    the crash, and the trapping caller gets an ``EXIT`` with the same reason."""

    class CrashingSupervisor(Supervisor):
        async def init(self, *args: Any) -> None:
            raise ArithmeticError("badmatch 2")

    async with otpy.open_node():
        otpy.trap_exits(True)
        reason = await start_error(CrashingSupervisor.start_link([], name=SUP))
        assert isinstance(reason, otpy.Crash)
        assert isinstance(reason.exception, ArithmeticError)
        msg = await otpy.receive(Exit, timeout=0)
        assert msg.reason == reason


async def test_sup_start_child_returns_error(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_child_returns_error — a failed start leaves
    no child. Deliberate differences: the error is the start's own reason
    (erl wraps it with the child record: ``{error,{reason,#child{}}}``, an
    internal record otpy has no use for), and a start function returning a
    non-pid fails with ``("bad_return", value)`` (erl passes the value on
    as the reason)."""

    async def returns_error() -> otpy.Pid:
        raise otpy.StartError(otpy.TermReason("reason"))

    async def returns_garbage() -> Any:
        return "error_reason"

    async with otpy.open_node():
        otpy.trap_exits(True)
        await start_link([])
        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(SUP, spec("child1", returns_error))
        assert info.value.reason == otpy.TermReason("reason")
        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(SUP, spec("child2", returns_garbage))
        assert info.value.reason == otpy.TermReason(("bad_return", "error_reason"))
        assert await which(SUP) == []


async def test_sup_start_restart_child_returns_error(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_restart_child_returns_error — restart_child
    returns the start's error (here init's function_clause) and the child
    stays stopped."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        await start_link([spec("child1", ErrorOnRestart())])
        await Supervisor.terminate_child(SUP, "child1")
        with pytest.raises(SupervisorError) as info:
            await Supervisor.restart_child(SUP, "child1")
        assert info.value.reason == otpy.TermReason(("function_clause", "error"))
        assert await which(SUP) == [("child1", None, "worker", [])]


async def test_sup_start_child_returns_error_simple(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_child_returns_error_simple — the dynamic
    supervisor returns the bare reason (as erl does for simple_one_for_one);
    a non-pid return is ``("bad_return", value)`` (erl: the value itself)."""

    async def returns_error() -> otpy.Pid:
        raise otpy.StartError(otpy.TermReason("reason"))

    async def returns_garbage() -> Any:
        return "error_reason"

    async with otpy.open_node():
        otpy.trap_exits(True)
        await DynamicSupervisor.start_link(name=SUP)
        with pytest.raises(SupervisorError) as info:
            await DynamicSupervisor.start_child(SUP, spec("child1", returns_error))
        assert info.value.reason == otpy.TermReason("reason")
        with pytest.raises(SupervisorError) as info:
            await DynamicSupervisor.start_child(SUP, spec("child1", returns_garbage))
        assert info.value.reason == otpy.TermReason(("bad_return", "error_reason"))
        assert await DynamicSupervisor.which_children(SUP) == []


# --------------------------------------------------------- sup_start_map


async def test_sup_start_map(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_map — child spec defaults: restart
    permanent, shutdown 5 s for a worker and infinity for a supervisor, type
    worker. Deliberate difference: ``modules`` defaults to None (shown as
    ``[]``); erl defaults it to the start function's module, which a Python
    callable does not have (``GenServer.child_spec`` fills in the class)."""
    child1 = ChildSpec("child1", start_child)
    child2 = ChildSpec("child2", start_child, shutdown="brutal_kill")
    child3 = ChildSpec("child3", start_child, type="supervisor")
    assert (child1.restart, child1.shutdown, child1.type, child1.modules) == (
        "permanent", 5.0, "worker", None)
    assert (child2.restart, child2.shutdown, child2.type) == ("permanent", "brutal_kill",
                                                              "worker")
    assert (child3.restart, child3.shutdown, child3.type) == ("permanent", "infinity",
                                                              "supervisor")
    assert Child.child_spec(id="c").modules == ["Child"]
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([child1, child2, child3])
        assert [(i, t, m) for i, _, t, m in await which(sup)] == [
            ("child1", "worker", []), ("child2", "worker", []), ("child3", "supervisor", [])]
        await terminate(None, sup, None, otpy.Shutdown())


async def test_sup_start_map_faulty_specs(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_start_map_faulty_specs — a spec that is not a
    spec fails the start with ``{start_spec,{invalid_child_spec,child4}}``
    (as on erl). Deliberate difference: a missing id or start, or an
    unknown field, is refused when the `ChildSpec` is built (TypeError);
    erl finds ``missing_id`` / ``missing_start`` at start_link and ignores
    unknown keys."""
    with pytest.raises(TypeError):
        ChildSpec(start=start_child)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ChildSpec("child2")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ChildSpec("child3", start_child, silly_flag=True)  # type: ignore[call-arg]
    async with otpy.open_node():
        otpy.trap_exits(True)
        reason = await start_error(start_link(["child4"]))
        assert reason == otpy.TermReason(("start_spec", ("invalid_child_spec", "child4")))
        assert (await otpy.receive(Exit, timeout=0)).reason == reason


# -------------------------------------------------------------- sup_stop


async def test_sup_stop_infinity(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_stop_infinity — shutdown infinity is allowed for
    workers and supervisors; both children exit ``shutdown``."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([])
        cpid1 = await Supervisor.start_child(SUP, spec("child1", shutdown="infinity",
                                                       type="supervisor"))
        cpid2 = await Supervisor.start_child(SUP, spec("child2", shutdown="infinity"))
        assert cpid1 is not None and cpid2 is not None
        otpy.link(cpid1)
        otpy.link(cpid2)
        await terminate(None, sup, None, otpy.Shutdown())
        await check_exit_reason(cpid1, otpy.Shutdown())
        await check_exit_reason(cpid2, otpy.Shutdown())


async def test_sup_stop_timeout(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_stop_timeout — a child busy past its shutdown
    time (1 s) is killed; the other exits ``shutdown``."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([])
        cpid1 = await Supervisor.start_child(SUP, spec("child1"))
        cpid2 = await Supervisor.start_child(SUP, spec("child2"))
        assert cpid1 is not None and cpid2 is not None
        otpy.link(cpid1)
        otpy.link(cpid2)
        otpy.send(cpid2, ("sleep", 200))
        t0 = trio.current_time()
        await terminate(None, sup, None, otpy.Shutdown())
        assert trio.current_time() - t0 == pytest.approx(1.0)
        await check_exit_reason(cpid1, otpy.Shutdown())
        await check_exit_reason(cpid2, otpy.Killed())


async def test_sup_stop_brutal_kill(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_stop_brutal_kill"""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([])
        cpid1 = await Supervisor.start_child(SUP, spec("child1"))
        cpid2 = await Supervisor.start_child(SUP, spec("child2", shutdown="brutal_kill"))
        assert cpid1 is not None and cpid2 is not None
        otpy.link(cpid1)
        otpy.link(cpid2)
        await terminate(None, sup, None, otpy.Shutdown())
        await check_exit_reason(cpid1, otpy.Shutdown())
        await check_exit_reason(cpid2, otpy.Killed())


# ------------------------------------------------------- child administration


async def test_extra_return(autojump_clock: Clock) -> None:
    """supervisor_SUITE:extra_return — the child API around one child (otpy
    start functions return a pid only, so there is no ``Info`` to pass on)."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        child = spec("child1")
        await start_link([child])
        [(_, cpid, _, _)] = await which(SUP)
        otpy.link(cpid)
        for api in (Supervisor.terminate_child, Supervisor.delete_child,
                    Supervisor.restart_child):
            with pytest.raises(SupervisorError) as info:
                await api(SUP, "hej")
            assert info.value.reason == "not_found"
        for api in (Supervisor.delete_child, Supervisor.restart_child):
            with pytest.raises(SupervisorError) as info:
                await api(SUP, "child1")
            assert info.value.reason == "running"
        assert await which(SUP) == [("child1", cpid, "worker", [])]
        assert await counts(SUP) == [1, 1, 0, 1]

        await Supervisor.terminate_child(SUP, "child1")
        await check_exit_reason(cpid, otpy.Shutdown())
        assert await which(SUP) == [("child1", None, "worker", [])]
        assert await counts(SUP) == [1, 0, 0, 1]

        cpid2 = await Supervisor.restart_child(SUP, "child1")
        assert await which(SUP) == [("child1", cpid2, "worker", [])]
        assert await counts(SUP) == [1, 1, 0, 1]

        await Supervisor.terminate_child(SUP, "child1")
        await Supervisor.terminate_child(SUP, "child1")
        await Supervisor.delete_child(SUP, "child1")
        with pytest.raises(SupervisorError) as info:
            await Supervisor.restart_child(SUP, "child1")
        assert info.value.reason == "not_found"
        assert await which(SUP) == []
        assert await counts(SUP) == [0, 0, 0, 0]

        cpid3 = await Supervisor.start_child(SUP, child)
        assert await which(SUP) == [("child1", cpid3, "worker", [])]
        assert await counts(SUP) == [1, 1, 0, 1]
        # it is restarted automatically
        await terminate(SUP, cpid3, "child1", "abnormal")
        [(_, cpid4, _, _)] = await which(SUP)
        assert isinstance(cpid4, otpy.Pid) and cpid4 != cpid3
        assert await counts(SUP) == [1, 1, 0, 1]


async def test_child_adm(autojump_clock: Clock) -> None:
    """supervisor_SUITE:child_adm — start_child / terminate_child /
    restart_child / delete_child / which_children / count_children; a
    supervisor that does not exist fails the call with noproc."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        child = spec("child1")
        await start_link([child])
        [(_, cpid, _, _)] = await which(SUP)
        assert await counts(SUP) == [1, 1, 0, 1]
        otpy.link(cpid)

        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(SUP, child)
        assert info.value.reason == ("already_started", cpid)

        with pytest.raises(SupervisorError) as info:
            await Supervisor.terminate_child(SUP, "hej")
        assert info.value.reason == "not_found"
        with pytest.raises(otpy.CallError) as call_info:
            await Supervisor.terminate_child("foo", "child1")
        assert call_info.value.reason == otpy.NoProc()
        await Supervisor.terminate_child(SUP, "child1")
        await check_exit_reason(cpid, otpy.Shutdown())
        assert await which(SUP) == [("child1", None, "worker", [])]
        assert await counts(SUP) == [1, 0, 0, 1]
        await Supervisor.terminate_child(SUP, "child1")  # like deleting nothing: ok

        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(SUP, child)
        assert info.value.reason == "already_present"

        cpid2 = await Supervisor.restart_child(SUP, "child1")
        assert await which(SUP) == [("child1", cpid2, "worker", [])]
        assert await counts(SUP) == [1, 1, 0, 1]
        with pytest.raises(SupervisorError) as info:
            await Supervisor.restart_child(SUP, "child1")
        assert info.value.reason == "running"
        with pytest.raises(SupervisorError) as info:
            await Supervisor.restart_child(SUP, "child2")
        assert info.value.reason == "not_found"

        with pytest.raises(SupervisorError) as info:
            await Supervisor.delete_child(SUP, "child1")
        assert info.value.reason == "running"
        with pytest.raises(SupervisorError) as info:
            await Supervisor.delete_child(SUP, "hej")
        assert info.value.reason == "not_found"
        with pytest.raises(otpy.CallError) as call_info:
            await Supervisor.delete_child("foo", "child1")
        assert call_info.value.reason == otpy.NoProc()
        await Supervisor.terminate_child(SUP, "child1")
        await Supervisor.delete_child(SUP, "child1")
        with pytest.raises(SupervisorError) as info:
            await Supervisor.restart_child(SUP, "child1")
        assert info.value.reason == "not_found"
        assert await which(SUP) == []
        assert await counts(SUP) == [0, 0, 0, 0]

        with pytest.raises(otpy.CallError) as call_info:
            await Supervisor.start_child("foo", child)
        assert call_info.value.reason == otpy.NoProc()
        cpid3 = await Supervisor.start_child(SUP, child)
        assert await which(SUP) == [("child1", cpid3, "worker", [])]
        assert await counts(SUP) == [1, 1, 0, 1]

        # terminating by pid is for the dynamic supervisor only
        with pytest.raises(SupervisorError) as info:
            await Supervisor.terminate_child(SUP, cpid3)
        assert info.value.reason == "not_found"
        assert await which(SUP) == [("child1", cpid3, "worker", [])]
        assert await counts(SUP) == [1, 1, 0, 1]

        for api in (Supervisor.which_children, Supervisor.count_children):
            with pytest.raises(otpy.CallError) as call_info:
                await api("foo")
            assert call_info.value.reason == otpy.NoProc()


async def test_child_adm_simple(autojump_clock: Clock) -> None:
    """supervisor_SUITE:child_adm_simple on DynamicSupervisor. Deliberate
    differences, following Elixir's DynamicSupervisor: ``specs`` counts the
    children (erl counts the one simple_one_for_one template:
    ``[1,0,0,0]`` when empty), ``terminate_child`` takes a pid only (erl
    answers ``{error,simple_one_for_one}`` for an id) and answers
    ``not_found`` for a child already gone (erl: ``ok``); there is no
    restart_child / delete_child."""
    async with otpy.open_node():
        await DynamicSupervisor.start_link(max_restarts=2, max_seconds=3600, name=SUP)
        child = spec("child")
        assert await DynamicSupervisor.which_children(SUP) == []
        assert await dyn_counts(SUP) == [0, 0, 0, 0]

        with pytest.raises(otpy.CallError) as call_info:
            await DynamicSupervisor.start_child("foo", child)
        assert call_info.value.reason == otpy.NoProc()
        cpid1 = await DynamicSupervisor.start_child(SUP, child)
        assert await DynamicSupervisor.which_children(SUP) == [ChildInfo(None, cpid1, "worker",
                                                                         [])]
        assert await dyn_counts(SUP) == [1, 1, 0, 1]

        cpid2 = await DynamicSupervisor.start_child(SUP, child)
        rows = await DynamicSupervisor.which_children(SUP)
        assert len(rows) == 2
        assert ChildInfo(None, cpid1, "worker", []) in rows
        assert ChildInfo(None, cpid2, "worker", []) in rows
        assert await dyn_counts(SUP) == [2, 2, 0, 2]

        with pytest.raises(SupervisorError) as info:
            await DynamicSupervisor.terminate_child(SUP, "child1")  # type: ignore[arg-type]
        assert info.value.reason == "not_found"
        assert await dyn_counts(SUP) == [2, 2, 0, 2]
        assert cpid1 is not None
        await DynamicSupervisor.terminate_child(SUP, cpid1)
        assert len(await DynamicSupervisor.which_children(SUP)) == 1
        assert await dyn_counts(SUP) == [1, 1, 0, 1]
        assert not otpy.is_alive(cpid1)
        with pytest.raises(SupervisorError) as info:
            await DynamicSupervisor.terminate_child(SUP, cpid1)
        assert info.value.reason == "not_found"
        assert await dyn_counts(SUP) == [1, 1, 0, 1]

        async def forever() -> None:
            await otpy.receive()

        no_child = otpy.spawn_link(forever)
        with pytest.raises(SupervisorError) as info:
            await DynamicSupervisor.terminate_child(SUP, no_child)
        assert info.value.reason == "not_found"
        assert otpy.is_alive(no_child)
        otpy.unlink(no_child)
        otpy.exit(no_child, otpy.Kill())


async def test_child_specs(autojump_clock: Clock) -> None:
    """supervisor_SUITE:child_specs — ``start_child(sup, hej)`` answers
    ``{error,{invalid_child_spec,hej}}`` (erl, OTP 25) and leaves the
    supervisor and its children alone; duplicate ids fail the start with
    ``{start_spec,{duplicate_child_name,child}}`` (erl). Deliberate
    difference: a bad field (B1-B6 in the suite) is refused when the
    `ChildSpec` is built or changed (ValueError, TypeError for ``start``),
    where erl checks at start_child (``{error,{invalid_mfa,mfa}}`` ...)."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([spec("child0")])
        [(_, cpid0, _, _)] = await which(sup)
        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(SUP, "hej")  # type: ignore[arg-type]
        assert info.value.reason == ("invalid_child_spec", "hej")
        assert otpy.is_alive(sup)
        assert await which(sup) == [("child0", cpid0, "worker", [])]

        with pytest.raises(TypeError):
            ChildSpec("child", "mfa")
        with pytest.raises(ValueError, match="restart"):
            ChildSpec("child", start_child, restart="prmanent")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="shutdown"):
            ChildSpec("child", start_child, shutdown=-10)
        with pytest.raises(ValueError, match="type"):
            ChildSpec("child", start_child, type="wrker")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="modules"):
            ChildSpec("child", start_child, modules="dy")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="modules"):
            ChildSpec("child", start_child, modules=[1, 2, 3])  # type: ignore[list-item]
        good = spec("child")
        with pytest.raises(ValueError):
            good.restart = "prmanent"  # type: ignore[assignment]
        with pytest.raises(ValueError):
            good.shutdown = -10

        c1 = ChildSpec("child", start_child, shutdown="infinity", type="supervisor", modules=[])
        c2 = ChildSpec("child", start_child, shutdown=1.0, type="supervisor", modules=[])
        ChildSpec("child", start_child, restart="temporary", shutdown=1.0)
        ChildSpec("child", start_child, restart="transient", shutdown=1.0, modules=["m"])
        ChildSpec("child", start_child, shutdown="infinity", modules=["m"])

        await terminate(None, sup, None, otpy.Shutdown())
        await check_exit_reason(sup, otpy.Shutdown())
        reason = await start_error(start_link([c1, c2]))
        assert reason == otpy.TermReason(("start_spec", ("duplicate_child_name", "child")))
        assert (await otpy.receive(Exit, timeout=0)).reason == reason


async def test_child_specs_dynamic(autojump_clock: Clock) -> None:
    """supervisor_SUITE:child_specs, ``start_child(sup, hej)`` on the dynamic
    supervisor: an error, and the supervisor and its children live on."""
    async with otpy.open_node():
        sup = await DynamicSupervisor.start_link(name=SUP)
        cpid = await DynamicSupervisor.start_child(SUP, spec("child"))
        with pytest.raises(SupervisorError) as info:
            await DynamicSupervisor.start_child(SUP, "hej")  # type: ignore[arg-type]
        assert info.value.reason == ("invalid_child_spec", "hej")
        assert otpy.is_alive(sup)
        assert await DynamicSupervisor.which_children(SUP) == [ChildInfo(None, cpid, "worker",
                                                                         [])]


async def test_sup_flags(autojump_clock: Clock) -> None:
    """supervisor_SUITE:sup_flags — bad strategy, intensity or period fail the
    start with ``{supervisor_data,{invalid_strategy | invalid_intensity |
    invalid_period, Value}}`` (erl, OTP 25). Deliberate difference: otpy
    takes the flags as keyword arguments, so "unexpected flags are ignored"
    becomes a TypeError, and a period may be a float."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        bad = [
            (("none_for_one", 2, 3600), ("invalid_strategy", "none_for_one")),
            (("one_for_one", "infinity", 3600), ("invalid_intensity", "infinity")),
            (("one_for_one", -1, 3600), ("invalid_intensity", -1)),
            (("one_for_one", 2, 0), ("invalid_period", 0)),
            (("one_for_one", 2, float("inf")), ("invalid_period", float("inf"))),
            (("one_for_one", 2, "infinity"), ("invalid_period", "infinity")),
        ]
        for (strategy, max_restarts, max_seconds), error in bad:
            reason = await start_error(start_link([], strategy, max_restarts, max_seconds))
            assert reason == otpy.TermReason(("supervisor_data", error))
            assert (await otpy.receive(Exit, timeout=0)).reason == reason
        reason = await start_error(DynamicSupervisor.start_link(max_restarts=-1))
        assert reason == otpy.TermReason(("supervisor_data", ("invalid_intensity", -1)))
        await otpy.receive(Exit, timeout=0)
        with pytest.raises(TypeError):
            await Supervisor.start_link([], silly_flag=True)  # type: ignore[call-arg]
        sup = await start_link([], "one_for_one", 2, 0.5)
        await terminate(None, sup, None, otpy.Shutdown())


# --------------------------------------------- restart type x exit reason


@pytest.mark.parametrize(
    ("restart", "how", "restarted"),
    [
        ("permanent", "normal", True),
        ("transient", "normal", False),
        ("temporary", "normal", None),
        ("permanent", otpy.Shutdown(), True),
        ("transient", otpy.Shutdown(), False),
        ("temporary", otpy.Shutdown(), None),
        ("permanent", otpy.Shutdown("some_info"), True),
        ("transient", otpy.Shutdown("some_info"), False),
        ("temporary", otpy.Shutdown("some_info"), None),
        ("permanent", "abnormal", True),
        ("transient", "abnormal", True),
        ("temporary", "abnormal", None),
        ("permanent", "kill", True),
        ("transient", "kill", True),
        ("temporary", "kill", None),
    ],
)
async def test_restart_type_and_exit_reason(autojump_clock: Clock, restart: str, how: Any,
                                            restarted: bool | None) -> None:
    """supervisor_SUITE:permanent_normal, transient_normal, temporary_normal,
    permanent_shutdown, transient_shutdown, temporary_shutdown,
    permanent_abnormal, transient_abnormal, temporary_abnormal — a permanent
    child is always restarted, a transient one unless it exits normal,
    shutdown or {shutdown, Term}, a temporary one never and its spec is
    dropped. (``kill`` added: a transient child killed is restarted.)"""
    async with otpy.open_node():
        sup = await start_link([])
        cpid1 = await Supervisor.start_child(SUP, spec("child1", restart=restart))
        await terminate(sup, cpid1, "child1", how)
        rows = await which(SUP)
        if restarted is None:
            assert rows == []
            assert await counts(SUP) == [0, 0, 0, 0]
        elif restarted:
            [(_, pid, _, _)] = rows
            assert isinstance(pid, otpy.Pid) and pid != cpid1
            assert await counts(SUP) == [1, 1, 0, 1]
        else:
            assert rows == [("child1", None, "worker", [])]
            assert await counts(SUP) == [1, 0, 0, 1]
            # transient_shutdown: it can be restarted by hand, and stops again
            assert await Supervisor.restart_child(SUP, "child1") is not None


async def test_temporary_bystander(autojump_clock: Clock) -> None:
    """supervisor_SUITE:temporary_bystander — a temporary child stopped by a
    one_for_all / rest_for_one restart is not restarted (its spec is gone),
    so the supervisor does not hit its intensity trying."""
    async with otpy.open_node():
        child1 = spec("child1", shutdown=0.1)
        child2 = spec("child2", restart="temporary", shutdown=0.1)
        sup1 = await Supervisor.start_link([], "one_for_all", 2, 300)
        sup2 = await Supervisor.start_link([], "rest_for_one", 2, 300)
        otpy.unlink(sup1)
        otpy.unlink(sup2)
        cpid1 = await Supervisor.start_child(sup1, child1)
        await Supervisor.start_child(sup1, child2)
        cpid3 = await Supervisor.start_child(sup2, child1)
        await Supervisor.start_child(sup2, child2)
        await terminate(sup1, cpid1, "child1", "normal")
        await terminate(sup2, cpid3, "child1", "normal")
        await trio.sleep(0.35)
        assert otpy.is_alive(sup1) and otpy.is_alive(sup2)
        assert [r[0] for r in await which(sup1)] == ["child1"]
        assert [r[0] for r in await which(sup2)] == ["child1"]


# ------------------------------------------------------------ strategies


async def test_multiple_restarts(autojump_clock: Clock) -> None:
    """supervisor_SUITE:multiple_restarts — intensity 1 in 1 s: restarts 2.1 s
    apart never exceed it."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([], "one_for_one", 1, 1)
        cpid1 = await Supervisor.start_child(SUP, spec("child1", shutdown="brutal_kill"))
        await terminate(sup, cpid1, "child1", "abnormal")
        for _ in range(3):
            await trio.sleep(2.1)
            [(_, pid, _, _), *_] = await which(SUP)
            await terminate(sup, pid, "child1", "abnormal")
        await Supervisor.terminate_child(sup, "child1")
        await Supervisor.delete_child(sup, "child1")
        otpy.exit(sup, otpy.Kill())
        await check_exit_reason(sup, otpy.Killed())


async def test_one_for_one(autojump_clock: Clock) -> None:
    """supervisor_SUITE:one_for_one — only the failing child is restarted;
    the third restart within the period (intensity 2) stops the supervisor."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([], "one_for_one", 2, 3600)
        cpid1 = await Supervisor.start_child(SUP, spec("child1"))
        cpid2 = await Supervisor.start_child(SUP, spec("child2"))
        await terminate(sup, cpid1, "child1", "abnormal")
        rows = await which(SUP)
        assert len(rows) == 2 and cpid2 in [r[1] for r in rows]
        assert await counts(SUP) == [2, 2, 0, 2]
        await terminate(sup, cpid2, "child2", "abnormal")
        [(id4, pid4, _, _), *_] = await which(SUP)
        await terminate(sup, pid4, id4, "abnormal")
        await check_exit(sup)


async def test_one_for_one_escalation(autojump_clock: Clock) -> None:
    """supervisor_SUITE:one_for_one_escalation — a child that cannot be
    restarted makes the supervisor retry until its intensity (4) is spent,
    then it stops, and its other child with it."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([], "one_for_one", 4, 3600)
        cpid1 = await Supervisor.start_child(SUP, spec("child1", ErrorOnRestart()))
        cpid2 = await Supervisor.start_child(SUP, spec("child2"))
        assert cpid2 is not None
        otpy.link(cpid2)
        await terminate(sup, cpid1, "child1", "abnormal")
        await check_exit(sup, cpid2)


async def test_one_for_all(autojump_clock: Clock) -> None:
    """supervisor_SUITE:one_for_all — every child is restarted; no old pid
    survives; the third restart (intensity 2) stops the supervisor."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([], "one_for_all", 2, 3600)
        cpid1 = await Supervisor.start_child(SUP, spec("child1"))
        cpid2 = await Supervisor.start_child(SUP, spec("child2"))
        assert cpid2 is not None
        otpy.link(cpid2)
        await terminate(sup, cpid1, "child1", "abnormal")
        await check_exit(cpid2)
        rows = await which(SUP)
        assert len(rows) == 2
        assert not {cpid1, cpid2} & {r[1] for r in rows}
        assert await counts(SUP) == [2, 2, 0, 2]
        [(id3, pid3, _, _), *_] = await which(SUP)
        await terminate(sup, pid3, id3, "abnormal")
        [(id4, pid4, _, _), *_] = await which(SUP)
        await terminate(sup, pid4, id4, "abnormal")
        await check_exit(sup)


async def test_one_for_all_escalation(autojump_clock: Clock) -> None:
    """supervisor_SUITE:one_for_all_escalation"""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([], "one_for_all", 4, 3600)
        cpid1 = await Supervisor.start_child(SUP, spec("child1"))
        cpid2 = await Supervisor.start_child(SUP, spec("child2", ErrorOnRestart()))
        assert cpid2 is not None
        otpy.link(cpid2)
        await terminate(sup, cpid1, "child1", "abnormal")
        await check_exit(cpid2, sup)


class Controlled(otpy.GenServer):
    """supervisor_3: init reports ``(name, pid)`` to the test and waits for
    ``(result, test)``: ``"ok"`` starts, ``("stop", reason)`` fails the start."""

    async def init(self, name: str, caller: otpy.Pid) -> None:
        otpy.send(caller, (name, otpy.self()))
        result, _ = await otpy.receive(lambda m: type(m) is tuple and len(m) == 2
                                       and m[1] == caller)
        if result != "ok":
            raise otpy.Stop(result[1])


async def child_started(name: str) -> Any:
    """Wait for a Controlled child named ``name`` to report (the other name's
    report fails the test: the suite's ``{_childName, _Pid}`` clause)."""
    msg = await otpy.receive(lambda m: type(m) is tuple and len(m) == 2
                             and m[0] in ("child1", "child2"))
    assert msg[0] == name, f"expected {name} to start, got {msg}"
    return msg[1]


async def other_child_fails_restart(strategy: str) -> tuple[Any, Any, Any]:
    """The common first half of the two ``*_other_child_fails_restart`` cases."""
    me = otpy.self()
    children = [ChildSpec(n, (Controlled.start_link, (n, me), {}), shutdown=1.0, modules=[])
                for n in ("child1", "child2")]

    async def starter() -> None:
        sup = await Supervisor.start_link(children, strategy, 3, 3600,  # type: ignore[arg-type]
                                          name=SUP)
        otpy.send(me, ("sup_pid", sup))
        await otpy.receive(lambda m: m == ("stop", me))

    starter_pid = otpy.spawn_link(starter)
    ok = ("ok", me)
    child1 = await child_started("child1")
    otpy.send(child1, ok)
    otpy.send(await child_started("child2"), ok)
    _, sup = await otpy.receive(lambda m: type(m) is tuple and m[0] == "sup_pid")
    otpy.link(sup)
    otpy.exit(child1, otpy.TermReason("die"))
    child1b = await child_started("child1")  # child1 restarts, child2 does not
    return starter_pid, sup, child1b


async def test_one_for_all_other_child_fails_restart(autojump_clock: Clock) -> None:
    """supervisor_SUITE:one_for_all_other_child_fails_restart — when child2
    fails to start during a one_for_all restart, the freshly restarted
    child1 is shut down again (``DOWN ... shutdown``) and both restart."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        me = otpy.self()
        ok = ("ok", me)
        starter_pid, sup, child1b = await other_child_fails_restart("one_for_all")
        ref = otpy.monitor(child1b)
        otpy.send(child1b, ok)
        otpy.send(await child_started("child2"), (("stop", otpy.Normal()), me))
        msg = await otpy.receive(lambda m: (type(m) is Down and m.ref == ref)
                                 or (type(m) is tuple and m[0] in ("child1", "child2")))
        assert msg == Down(ref, child1b, otpy.Shutdown()), "restarting child not terminated"
        otpy.send(await child_started("child1"), ok)
        otpy.send(await child_started("child2"), ok)
        otpy.send(starter_pid, ("stop", me))
        await check_exit(starter_pid, sup)


async def test_simple_one_for_one(autojump_clock: Clock) -> None:
    """supervisor_SUITE:simple_one_for_one on DynamicSupervisor (``specs``
    counts children, as in Elixir: erl shows ``[1,2,0,2]``)."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await DynamicSupervisor.start_link(max_restarts=2, max_seconds=3600, name=SUP)
        child = spec("child")
        cpid1 = await DynamicSupervisor.start_child(SUP, child)
        cpid2 = await DynamicSupervisor.start_child(SUP, child)
        await terminate(sup, cpid1, "child1", "abnormal")
        rows = await DynamicSupervisor.which_children(SUP)
        assert len(rows) == 2 and cpid2 in [r.pid for r in rows]
        assert await dyn_counts(SUP) == [2, 2, 0, 2]
        await terminate(sup, cpid2, "child2", "abnormal")
        pid4 = (await DynamicSupervisor.which_children(SUP))[0].pid
        await terminate(sup, pid4, None, "abnormal")
        await check_exit_reason(sup, otpy.Shutdown())


class SlowToStop(otpy.GenServer):
    """supervisor_2: traps exits and takes ``time`` seconds to terminate."""

    trap_exits = True

    async def init(self, time: float) -> None:
        self.time = time

    async def terminate(self, reason: otpy.ExitReason) -> None:
        await trio.sleep(self.time)


async def test_simple_one_for_one_shutdown(autojump_clock: Clock) -> None:
    """supervisor_SUITE:simple_one_for_one_shutdown — the children are stopped
    all at once: two take 1 s, one would take 5 s and is killed at its
    shutdown time of 2 s, so the supervisor is gone after 2 s (erl, OTP 25:
    2001 ms; the suite asserts 1 s <= T < 5 s)."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await DynamicSupervisor.start_link(max_restarts=2, max_seconds=3600, name=SUP)
        pids = []
        for t in (1.0, 1.0, 5.0):
            pids.append(await DynamicSupervisor.start_child(
                SUP, ChildSpec("child", (SlowToStop.start_link, (t,), {}), shutdown=2.0)))
        refs = [otpy.monitor(p) for p in pids]
        t0 = trio.current_time()
        await terminate(None, sup, None, otpy.Shutdown())
        assert trio.current_time() - t0 == pytest.approx(2.0)
        reasons = []
        for ref in refs:
            down = await otpy.receive(lambda m, ref=ref: type(m) is Down and m.ref == ref,
                                      timeout=0)
            reasons.append(down.reason)
        assert reasons == [otpy.Shutdown(), otpy.Shutdown(), otpy.Killed()]
        await check_exit(sup)


async def test_simple_one_for_one_escalation(autojump_clock: Clock) -> None:
    """supervisor_SUITE:simple_one_for_one_escalation"""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await DynamicSupervisor.start_link(max_restarts=4, max_seconds=3600, name=SUP)
        cpid1 = await DynamicSupervisor.start_child(SUP, spec("child", ErrorOnRestart()))
        assert cpid1 is not None
        otpy.link(cpid1)
        cpid2 = await DynamicSupervisor.start_child(SUP, spec("child"))
        assert cpid2 is not None
        otpy.link(cpid2)
        await terminate(sup, cpid1, "child", "abnormal")
        await check_exit(sup, cpid2)


async def test_rest_for_one(autojump_clock: Clock) -> None:
    """supervisor_SUITE:rest_for_one — the failing child and those after it
    are restarted; the ones before keep running."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([], "rest_for_one", 2, 3600)
        cpid1 = await Supervisor.start_child(SUP, spec("child1"))
        assert cpid1 is not None
        otpy.link(cpid1)
        cpid2 = await Supervisor.start_child(SUP, spec("child2"))
        cpid3 = await Supervisor.start_child(SUP, spec("child3"))
        assert cpid3 is not None
        otpy.link(cpid3)
        assert await counts(SUP) == [3, 3, 0, 3]
        await terminate(sup, cpid2, "child2", "abnormal")
        await check_exit(cpid3)
        rows = await which(SUP)
        pids = [r[1] for r in rows]
        assert len(rows) == 3
        assert cpid1 in pids and cpid2 not in pids and cpid3 not in pids
        assert await counts(SUP) == [3, 3, 0, 3]
        [_, _, (_, pid3, _, _)] = await which(SUP)
        await terminate(sup, pid3, "child3", "abnormal")
        [_, (_, pid4, _, _), _] = await which(SUP)
        await terminate(sup, pid4, "child2", "abnormal")
        await check_exit(sup)


async def test_rest_for_one_escalation(autojump_clock: Clock) -> None:
    """supervisor_SUITE:rest_for_one_escalation"""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await start_link([], "rest_for_one", 4, 3600)
        cpid1 = await Supervisor.start_child(SUP, spec("child1"))
        cpid2 = await Supervisor.start_child(SUP, spec("child2", ErrorOnRestart()))
        assert cpid2 is not None
        otpy.link(cpid2)
        await terminate(sup, cpid1, "child1", "abnormal")
        await check_exit(cpid2, sup)


async def test_rest_for_one_other_child_fails_restart(autojump_clock: Clock) -> None:
    """supervisor_SUITE:rest_for_one_other_child_fails_restart — when child2
    fails to start during a rest_for_one restart, only child2 is tried
    again: child1, before it, is not restarted."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        me = otpy.self()
        ok = ("ok", me)
        starter_pid, sup, child1b = await other_child_fails_restart("rest_for_one")
        otpy.send(child1b, ok)
        otpy.send(await child_started("child2"), (("stop", otpy.Normal()), me))
        otpy.send(await child_started("child2"), ok)  # "restarting_started_child" if child1
        otpy.send(starter_pid, ("stop", me))
        await check_exit(starter_pid, sup)


# ----------------------------------------------------------------- misc


class NaughtyChild(otpy.GenServer):
    """naughty_child: unlinks itself from its supervisor in init."""

    async def init(self, sup: otpy.Pid) -> None:
        otpy.unlink(sup)


async def test_child_unlink(autojump_clock: Clock) -> None:
    """supervisor_SUITE:child_unlink — terminating a child that unlinked
    itself does not hang the supervisor (it monitors the child)."""
    async with otpy.open_node():
        sup = await start_link([])
        child = ChildSpec("naughty_child", (NaughtyChild.start_link, (sup,),
                                            {"name": "naughty_foo"}), shutdown=1.0)
        child_pid = await Supervisor.start_child(SUP, child)

        async def terminator() -> None:
            await Supervisor.terminate_child(sup, "naughty_child")

        _, ref = otpy.spawn_monitor(terminator)
        otpy.send(sup, "foo")
        down = await otpy.receive(lambda m: type(m) is Down and m.ref == ref, timeout=5)
        assert down.reason == otpy.Normal()
        assert child_pid is not None and not otpy.is_alive(child_pid)
        assert await which(sup) == [("naughty_child", None, "worker", [])]


async def test_tree(autojump_clock: Clock) -> None:
    """supervisor_SUITE:tree — a two-level tree: a child's crash is handled
    by its own supervisor; a child supervisor that gives up is restarted by
    the top one_for_all supervisor, with every sibling subtree, and children
    added to it with start_child are not part of the restarted tree."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        child1, child2 = spec("child1"), spec("child2")
        child3, child4 = spec("child3", ErrorOnRestart()), spec("child4")
        sup_child1 = Supervisor.child_spec([child1, child2], "one_for_one", 4, 3600,
                                           id="supchild1")
        sup_child2 = Supervisor.child_spec([], "one_for_one", 4, 3600, id="supchild2")
        sup_child3 = Supervisor.child_spec([], "one_for_one", 4, 3600, id="supchild3",
                                           restart="transient")
        top = await start_link([], "one_for_all", 4, 3600)
        sup1 = await Supervisor.start_child(top, sup_child1)
        sup2 = await Supervisor.start_child(top, sup_child2)
        await Supervisor.start_child(top, sup_child3)
        await Supervisor.terminate_child(top, "supchild3")
        assert await counts(top) == [3, 2, 3, 0]

        [(_, cpid1, _, _), (_, cpid2, _, _)] = await which(sup1)
        assert await counts(sup1) == [2, 2, 0, 2]
        assert await counts(sup2) == [0, 0, 0, 0]

        cpid3 = await Supervisor.start_child(sup2, child3)
        cpid4 = await Supervisor.start_child(sup2, child4)
        assert await counts(sup1) == [2, 2, 0, 2]
        assert await counts(sup2) == [2, 2, 0, 2]

        # only the process that dies is restarted
        await terminate(sup2, cpid4, "child4", "abnormal")
        assert await which(sup1) == [("child1", cpid1, "worker", []),
                                     ("child2", cpid2, "worker", [])]
        assert await counts(sup1) == [2, 2, 0, 2]
        [(_, same_cpid3, _, _), (_, new_cpid4, _, _)] = await which(sup2)
        assert same_cpid3 == cpid3 and new_cpid4 != cpid4
        assert await counts(sup2) == [2, 2, 0, 2]

        # child3 cannot restart: sup2 gives up, the whole tree restarts
        await terminate(sup2, cpid3, "child3", "abnormal")
        await settle()
        rows = await which(top)
        assert [r[0] for r in rows] == ["supchild1", "supchild2", "supchild3"]
        assert await counts(top) == [3, 3, 3, 0]
        new_sup1, new_sup2, new_sup3 = (r[1] for r in rows)
        assert [r[0] for r in await which(new_sup1)] == ["child1", "child2"]
        assert await counts(new_sup1) == [2, 2, 0, 2]
        assert await which(new_sup2) == []
        assert await counts(new_sup2) == [0, 0, 0, 0]
        assert await which(new_sup3) == []
        assert await counts(new_sup3) == [0, 0, 0, 0]


@pytest.mark.parametrize("kind", ["worker", "supervisor"])
async def test_count_children(autojump_clock: Clock, kind: str) -> None:
    """supervisor_SUITE:count_children and count_children_supervisor (100
    children instead of 1000). ``specs`` counts children as in Elixir's
    DynamicSupervisor (erl's simple_one_for_one counts its one template:
    ``[1,1000,0,1000]``, ``[1,0,0,0]`` at the end)."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await DynamicSupervisor.start_link(max_restarts=2, max_seconds=3600, name=SUP)
        child = spec("child", restart="temporary",
                     shutdown="infinity" if kind == "supervisor" else 1.0, type=kind)
        for _ in range(100):
            await DynamicSupervisor.start_child(SUP, child)
        rows = await DynamicSupervisor.which_children(SUP)
        c1 = await dyn_counts(SUP)
        for _ in range(100):
            await DynamicSupervisor.start_child(SUP, child)
        c2 = await dyn_counts(SUP)
        rows2 = await DynamicSupervisor.which_children(SUP)
        c3 = await dyn_counts(SUP)
        rows3 = await DynamicSupervisor.which_children(SUP)
        sups = 1 if kind == "supervisor" else 0
        assert len(rows) == 100
        assert c1 == [100, 100, 100 * sups, 100 * (1 - sups)]
        assert len(rows2) == 200
        assert c2 == [200, 200, 200 * sups, 200 * (1 - sups)]
        assert (rows3, c3) == (rows2, c2)
        for row in rows3:
            assert row.id is None and row.type == kind
            await terminate(sup, row.pid, "child", "kill")
        assert await dyn_counts(SUP) == [0, 0, 0, 0]


class Deadlock(otpy.GenServer):
    """supervisor_deadlock: init fails (after 2 s) while ``FAIL_START`` is
    set; a ``restart`` cast stops it with ``error``."""

    async def init(self, flags: dict[str, bool]) -> None:
        if flags["fail_start"]:
            await trio.sleep(2)
            raise otpy.Stop(otpy.TermReason("error"))

    async def handle_cast(self, request: Any) -> None:
        raise otpy.Stop(otpy.TermReason("error"))


async def test_count_restarting_children(autojump_clock: Clock) -> None:
    """supervisor_SUITE:count_restarting_children — children in a restart
    loop count in ``specs`` and their type, not in ``active``, and show as
    `RESTARTING` (erl: ``restarting``). ``specs`` counts children, see
    test_count_children (erl: ``[1,1,0,3]`` where otpy has ``[3,1,0,3]``)."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        flags = {"fail_start": False}
        sup = await DynamicSupervisor.start_link(max_restarts=20, max_seconds=10, name=SUP)
        child = ChildSpec("child", (Deadlock.start_link, (flags,), {}), shutdown="brutal_kill")
        assert await dyn_counts(sup) == [0, 0, 0, 0]
        ch1 = [await DynamicSupervisor.start_child(sup, child) for _ in range(3)]
        assert await dyn_counts(sup) == [3, 3, 0, 3]
        for pid in ch1:
            otpy.cast(pid, "restart")
        await trio.sleep(0.4)
        assert await dyn_counts(sup) == [3, 3, 0, 3]
        ch2 = [r.pid for r in await DynamicSupervisor.which_children(sup)]
        assert not set(ch2) & set(ch1)

        flags["fail_start"] = True
        otpy.cast(ch2[0], "restart")
        otpy.cast(ch2[1], "restart")
        await trio.sleep(4)
        assert await dyn_counts(sup) == [3, 1, 0, 3]
        pids = [r.pid for r in await DynamicSupervisor.which_children(sup)]
        assert pids.count(RESTARTING) == 2 and ch2[2] in pids

        flags["fail_start"] = False
        await trio.sleep(4)
        assert await dyn_counts(sup) == [3, 3, 0, 3]
        await DynamicSupervisor.terminate_child(sup, ch2[2])  # type: ignore[arg-type]
        assert await dyn_counts(sup) == [2, 2, 0, 2]
        ch3 = [r.pid for r in await DynamicSupervisor.which_children(sup)]
        await DynamicSupervisor.terminate_child(sup, ch3[0])  # type: ignore[arg-type]
        assert await dyn_counts(sup) == [1, 1, 0, 1]
        await DynamicSupervisor.terminate_child(sup, ch3[1])  # type: ignore[arg-type]
        assert await dyn_counts(sup) == [0, 0, 0, 0]


@pytest.mark.parametrize("strategy", ["one_for_all", "one_for_one", "rest_for_one"])
@pytest.mark.parametrize("how", ["kill", "normal", "abnormal", "supervisor"])
async def test_do_not_save_child_specs_for_temporary_children(autojump_clock: Clock,
                                                              strategy: str, how: str) -> None:
    """supervisor_SUITE:do_not_save_child_specs_for_temporary_children — after
    the child ends (killed, normal, abnormal, or terminate_child): a
    permanent child is restarted (or its spec kept, after terminate_child),
    a transient one likewise unless it ended normally, and a temporary
    child's spec is gone so the same spec starts again."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await Supervisor.start_link([], strategy, 2, 3600)  # type: ignore[arg-type]

        async def restarted(child: ChildSpec) -> None:
            pid = await Supervisor.start_child(sup, child)
            await terminate(sup, pid, child.id, how)
            with pytest.raises(SupervisorError) as info:
                await Supervisor.start_child(sup, child)
            assert info.value.reason[0] == "already_started"

        async def already_present(child: ChildSpec) -> None:
            pid = await Supervisor.start_child(sup, child)
            await terminate(sup, pid, child.id, how)
            with pytest.raises(SupervisorError) as info:
                await Supervisor.start_child(sup, child)
            assert info.value.reason == "already_present"
            assert await Supervisor.restart_child(sup, child.id) is not None

        async def not_saved(child: ChildSpec) -> None:
            pid = await Supervisor.start_child(sup, child)
            await terminate(sup, pid, child.id, how)
            assert await Supervisor.start_child(sup, child) is not None

        permanent = spec("child1")
        transient = spec("child2", restart="transient")
        temporary = spec("child3", restart="temporary")
        await (already_present if how == "supervisor" else restarted)(permanent)
        await (already_present if how in ("supervisor", "normal") else restarted)(transient)
        await not_saved(temporary)
        await terminate(None, sup, None, otpy.Shutdown())


async def test_simple_global_supervisor(autojump_clock: Clock) -> None:
    """supervisor_SUITE:simple_global_supervisor (OTP-9212) with `otpy.Global`
    names: killing the middle supervisor or the worker, the worker exiting
    normally, or terminate_child + restart_child through the global name all
    leave new processes under the names; killing the top removes them."""

    class Server(otpy.GenServer):
        async def handle_info(self, message: Any) -> None:
            if type(message) is tuple and message[0] == "fail":
                raise otpy.ProcessExit(otpy.as_reason(message[1]))

    async def start9212() -> tuple[Any, Any, Any]:
        worker = ChildSpec("child", (Server.start_link, (), {"name": otpy.Global("server")}),
                           shutdown=2.0)
        middle = Supervisor.child_spec([worker], "one_for_all", 3, 60, id="middle",
                                       name=otpy.Global("sup2"), shutdown=2.0)
        top = await start_link([middle], "one_for_all", 3, 60)
        sup2, server = otpy.whereis(otpy.Global("sup2")), otpy.whereis(otpy.Global("server"))
        assert isinstance(sup2, otpy.Pid) and isinstance(server, otpy.Pid)
        return top, sup2, server

    async def stop9212(top: Any) -> None:
        otpy.exit(top, otpy.Kill())
        await settle()
        assert otpy.whereis(otpy.Global("sup2")) is None
        assert otpy.whereis(otpy.Global("server")) is None
        await check_exit(top)

    async def renewed(old_sup2: Any, old_server: Any) -> None:
        await settle()
        sup2, server = otpy.whereis(otpy.Global("sup2")), otpy.whereis(otpy.Global("server"))
        assert isinstance(sup2, otpy.Pid) and isinstance(server, otpy.Pid)
        assert server != old_server
        if old_sup2 is not None:
            assert sup2 != old_sup2

    async with otpy.open_node():
        otpy.trap_exits(True)
        top, sup2, server = await start9212()  # kill_supervisor
        otpy.exit(sup2, otpy.Kill())
        await renewed(sup2, server)
        await stop9212(top)

        top, _, server = await start9212()  # kill_worker
        otpy.exit(server, otpy.Kill())
        await renewed(None, server)
        await stop9212(top)

        top, _, server = await start9212()  # exit_worker
        otpy.send(server, ("fail", otpy.Normal(), 0))
        await renewed(None, server)
        await stop9212(top)

        top, _, server = await start9212()  # restart_worker
        await Supervisor.terminate_child(otpy.Global("sup2"), "child")
        assert await Supervisor.restart_child(otpy.Global("sup2"), "child") is not None
        await renewed(None, server)
        await stop9212(top)


async def test_hanging_restart_loop(autojump_clock: Clock) -> None:
    """supervisor_SUITE:hanging_restart_loop (OTP-9549) — a child stuck in a
    restart loop is listed as `RESTARTING` (erl: ``restarting``), is not
    counted active, answers ``restarting`` to restart_child / delete_child
    and ``already_present`` to start_child; terminate_child ends the loop;
    and the supervisor can be stopped while the loop runs."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        flags = {"fail_start": False}
        sup = await start_link([], "one_for_one", 8, 10)
        child1 = ChildSpec("child1", (Deadlock.start_link, (flags,), {"name": "deadlock"}),
                           shutdown="brutal_kill", modules=[])
        cpid1 = await Supervisor.start_child(SUP, child1)
        assert cpid1 is not None
        otpy.link(cpid1)

        flags["fail_start"] = True
        otpy.cast("deadlock", "restart")
        await trio.sleep(2)
        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(SUP, child1)
        assert info.value.reason == "already_present"
        for api in (Supervisor.restart_child, Supervisor.delete_child):
            with pytest.raises(SupervisorError) as info:
                await api(SUP, "child1")
            assert info.value.reason == "restarting"
        assert await which(SUP) == [("child1", RESTARTING, "worker", [])]
        assert await counts(SUP) == [1, 0, 0, 1]

        await Supervisor.terminate_child(SUP, "child1")
        await check_exit_reason(cpid1, "error")
        assert await which(SUP) == [("child1", None, "worker", [])]

        flags["fail_start"] = False
        cpid2 = await Supervisor.restart_child(SUP, "child1")
        assert cpid2 is not None
        otpy.link(cpid2)
        flags["fail_start"] = True
        otpy.cast("deadlock", "restart")
        await trio.sleep(2)
        await terminate(None, sup, None, otpy.Shutdown())  # must not hang
        await check_exit_reason(cpid2, "error")
        assert otpy.whereis(SUP) is None


async def test_hanging_restart_loop_rest_for_one(autojump_clock: Clock) -> None:
    """supervisor_SUITE:hanging_restart_loop_rest_for_one — while child2 is
    in a restart loop, child3 after it stays stopped (``undefined``) and
    child1 before it keeps running."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        flags = {"fail_start": False}
        sup = await start_link([], "rest_for_one", 8, 10)
        child1 = spec("child1", shutdown="brutal_kill")
        child2 = ChildSpec("child2", (Deadlock.start_link, (flags,), {"name": "deadlock"}),
                           shutdown="brutal_kill", modules=[])
        child3 = spec("child3", shutdown="brutal_kill")
        cpid1 = await Supervisor.start_child(SUP, child1)
        cpid2 = await Supervisor.start_child(SUP, child2)
        assert cpid2 is not None
        otpy.link(cpid2)
        await Supervisor.start_child(SUP, child3)

        flags["fail_start"] = True
        otpy.cast("deadlock", "restart")
        await trio.sleep(2)
        with pytest.raises(SupervisorError) as info:
            await Supervisor.start_child(SUP, child2)
        assert info.value.reason == "already_present"
        for api in (Supervisor.restart_child, Supervisor.delete_child):
            with pytest.raises(SupervisorError) as info:
                await api(SUP, "child2")
            assert info.value.reason == "restarting"
        assert await which(SUP) == [("child1", cpid1, "worker", []),
                                    ("child2", RESTARTING, "worker", []),
                                    ("child3", None, "worker", [])]
        assert await counts(SUP) == [3, 1, 0, 3]

        await Supervisor.terminate_child(SUP, "child2")
        await check_exit_reason(cpid2, "error")
        assert await which(SUP) == [("child1", cpid1, "worker", []),
                                    ("child2", None, "worker", []),
                                    ("child3", None, "worker", [])]

        flags["fail_start"] = False
        cpid22 = await Supervisor.restart_child(SUP, "child2")
        assert cpid22 is not None
        otpy.link(cpid22)
        flags["fail_start"] = True
        otpy.cast("deadlock", "restart")
        await trio.sleep(2)
        await terminate(None, sup, None, otpy.Shutdown())
        await check_exit_reason(cpid22, "error")
        assert otpy.whereis(SUP) is None


async def test_hanging_restart_loop_simple(autojump_clock: Clock) -> None:
    """supervisor_SUITE:hanging_restart_loop_simple on DynamicSupervisor —
    the child in the loop is listed under its old pid as `RESTARTING`
    (Elixir: ``{:undefined, :restarting, ...}``); terminate_child with that
    pid ends the loop. ``specs`` counts children (erl and otpy agree here:
    one)."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        flags = {"fail_start": False}
        sup = await DynamicSupervisor.start_link(max_restarts=8, max_seconds=10, name=SUP)
        child1 = ChildSpec("child1", (Deadlock.start_link, (flags,), {"name": "deadlock"}),
                           shutdown="brutal_kill", modules=[])
        cpid1 = await DynamicSupervisor.start_child(SUP, child1)
        assert cpid1 is not None
        otpy.link(cpid1)

        flags["fail_start"] = True
        otpy.cast("deadlock", "restart")
        await trio.sleep(2)
        assert await DynamicSupervisor.which_children(SUP) == [
            ChildInfo(None, RESTARTING, "worker", [])]
        assert await dyn_counts(SUP) == [1, 0, 0, 1]

        await DynamicSupervisor.terminate_child(SUP, cpid1)
        await check_exit_reason(cpid1, "error")
        assert await DynamicSupervisor.which_children(SUP) == []

        flags["fail_start"] = False
        cpid2 = await DynamicSupervisor.start_child(SUP, child1)
        assert cpid2 is not None
        otpy.link(cpid2)
        flags["fail_start"] = True
        otpy.cast("deadlock", "restart")
        await trio.sleep(2)
        await terminate(None, sup, None, otpy.Shutdown())
        await check_exit_reason(cpid2, "error")
        assert otpy.whereis(SUP) is None


class Tagged(Child):
    """A Child that logs its terminate (instead of the suite's dbg trace)."""

    log: list[str] = []

    async def init(self, tag: str) -> None:  # type: ignore[override]
        self.tag = tag

    async def terminate(self, reason: otpy.ExitReason) -> None:
        Tagged.log.append(self.tag)


async def test_order_of_children(autojump_clock: Clock) -> None:
    """supervisor_SUITE:order_of_children — children start in the given order
    (ids not sorted), a rest_for_one restart stops the later ones right to
    left and starts them left to right, and the supervisor stops them all
    right to left."""
    ids = ["ch7", "ch3", "ch10", "ch2", "ch5"]
    async with otpy.open_node():
        otpy.trap_exits(True)
        Tagged.log = []
        children = [ChildSpec(i, (Tagged.start_link, (i,), {}), shutdown=1.0, modules=[])
                    for i in ids]
        sup = await start_link(children, "rest_for_one", 2, 3600)
        which1 = await which(SUP)
        assert [r[0] for r in which1] == ids
        pids1 = [r[1] for r in which1]
        assert [p.id for p in pids1] == sorted(p.id for p in pids1)  # pids grow

        await terminate(sup, pids1[2], "ch10", "abnormal")
        await settle()
        assert Tagged.log == ["ch10", "ch5", "ch2"]  # its own terminate, then 5, then 2
        which2 = await which(SUP)
        assert [r[0] for r in which2] == ids
        pids2 = [r[1] for r in which2]
        assert pids2[:2] == pids1[:2]
        assert pids1[2].id < pids2[2].id < pids2[3].id < pids2[4].id

        Tagged.log = []
        otpy.exit(sup, otpy.Shutdown())
        await check_exit(sup)
        assert Tagged.log == ["ch5", "ch2", "ch10", "ch3", "ch7"]
