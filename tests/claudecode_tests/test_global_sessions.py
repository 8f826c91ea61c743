"""A supervised global session used from other nodes (issue 16), across real OS processes.

Node A is the supervision guide's ``node_a.py`` (docs/claudecode/supervision.md,
"One session for the whole cluster"), run as written in its own process with
the real CLI pointed at a FakeAnthropic served here. Then:

1. the guide's ``node_b.py`` runs in another process and prints what the page
   shows (typed messages, an answer, the supervisor's rows);
2. a consumer node is SIGKILLed mid-stream: node A's session interrupts that
   turn and answers the next caller;
3. this test's own node (C) drives the session by its global name: session
   calls, an unencodable prompt (typed error here, nothing crashes there),
   ``start_session`` on the remote supervisor (plain options work, callbacks
   are refused naming the option);
4. a real ``erl`` node finds the session through ``otpy_global`` and uses the
   documented term protocol: ``{query, Prompt}`` and ``{stream, Prompt}``.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from _session_env import CLI, fake, no_orphans

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the erl helpers
from _dist_erl import Epmd, ErlNode, unique

import claudecode
import otpy
from claudecode.testing import FakeAnthropic, Text, Turn

__all__ = ["fake", "no_orphans"]

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "claudecode" / "supervision.md"
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
COOKIE = "choose-a-long-random-cookie"
HOLD = Turn([Text("never finished")], delay=math.inf)


def guide_blocks() -> dict[str, str]:
    """``node_a.py`` / ``node_b.py`` and the text block after node B, from the guide."""
    found = list(FENCE.finditer(GUIDE.read_text("utf-8")))
    blocks: dict[str, str] = {}
    for i, m in enumerate(found):
        first = m.group(2).splitlines()[0] if m.group(2) else ""
        name = re.match(r"# (node_[ab]\.py)", first)
        if m.group(1) == "python" and name:
            blocks[name.group(1)] = m.group(2)
            if name.group(1) == "node_b.py" and found[i + 1].group(1) == "text":
                blocks["node_b.out"] = found[i + 1].group(2)
    return blocks


CONSUMER = """
import sys
import claudecode, otpy

async def main():
    await otpy.connect("node_a@localhost")
    async for message in claudecode.stream(otpy.Global("main_assistant"), "hold"):
        if isinstance(message, claudecode.SystemMessage):
            print("streaming", flush=True)

otpy.run(main, node="consumer@localhost", cookie=sys.argv[1])
"""


def env_for(fake: FakeAnthropic, tmp: Path, epmd: Epmd) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {**os.environ, **fake.env(max_retries=0), "HOME": str(home),
            "CLAUDE_CONFIG_DIR": str(home / ".claude"), "ERL_EPMD_PORT": str(epmd.port),
            "PATH": f"{Path(CLI).parent}:{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1"}


async def read_until(stream: Any, marker: bytes, timeout: float = 60) -> bytes:
    seen = b""
    with trio.fail_after(timeout):
        while marker not in seen:
            chunk = await stream.receive_some(4096)
            if not chunk:
                raise AssertionError(f"the process ended before {marker!r}: {seen!r}")
            seen += chunk
    return seen


async def test_a_global_session_serves_the_cluster(fake: FakeAnthropic, tmp_path: Path) -> None:
    blocks = guide_blocks()
    assert set(blocks) == {"node_a.py", "node_b.py", "node_b.out"}
    for name in ("node_a.py", "node_b.py"):
        (tmp_path / name).write_text(blocks[name], "utf-8")
    (tmp_path / "consumer.py").write_text(CONSUMER, "utf-8")
    fake.script(HOLD, when=lambda r: r.last_user_text == "hold")
    epmd = Epmd()
    env = env_for(fake, tmp_path, epmd)
    node_a = await trio.lowlevel.open_process(
        [sys.executable, str(tmp_path / "node_a.py")], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert node_a.stdout is not None
        await read_until(node_a.stdout, b"node A serves main_assistant")

        # 1. the guide's node B, as written
        with trio.fail_after(60):
            done = await trio.run_process([sys.executable, str(tmp_path / "node_b.py")],
                                          cwd=tmp_path, env=env, capture_stdout=True,
                                          capture_stderr=True, check=False)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        assert done.stdout.decode().strip() == blocks["node_b.out"].strip()

        # 2. a consumer node dies mid-stream: the turn is interrupted
        consumer = await trio.lowlevel.open_process(
            [sys.executable, str(tmp_path / "consumer.py"), COOKIE], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert consumer.stdout is not None
        await read_until(consumer.stdout, b"streaming")
        await fake.wait_for_requests(1, lambda r: r.last_user_text == "hold")
        consumer.send_signal(signal.SIGKILL)
        await consumer.wait()

        async with otpy.open_node(node=f"{unique('c')}@localhost", cookie=COOKIE,
                                  epmd_port=epmd.port):
            assert await otpy.connect("node_a@localhost")
            assistant = otpy.Global("main_assistant")
            with trio.fail_after(30):  # not held by the dead consumer's turn
                text = await claudecode.stream(assistant, "next").final_text()
            assert text.endswith(": next")
            assert "[Request interrupted by user]" in fake.messages_requests[-1].body.decode()

            # 3. session calls by global name, from here
            session_pid = otpy.whereis(assistant)
            assert session_pid is not None and session_pid.node.name == "node_a@localhost"
            assert await claudecode.health(assistant) == "healthy"
            assert await claudecode.get_session_id(assistant)
            await claudecode.set_model(assistant, "claude-sonnet-4-5")
            assert await claudecode.interrupt(assistant) is None  # nothing running
            info = await claudecode.adapter_info(assistant)
            assert info["model"] == "claude-sonnet-4-5"
            # an unencodable prompt: a typed error here, nothing crashes there
            with pytest.raises(otpy.ETFEncodeError) as bad:
                await claudecode.stream(assistant, [{"type": "text", "text": {1, 2}}]).collect()
            assert "set" in str(bad.value)
            assert otpy.whereis(assistant) == session_pid
            # sessions started on the remote supervisor
            sup = otpy.Global("claude_sessions")
            extra = await claudecode.Supervisor.start_session(
                sup, {"name": otpy.Global("extra"), "system_prompt": "Be terse."})
            assert extra.node.name == "node_a@localhost"
            assert (await claudecode.stream(extra, "hi").final_text()).endswith(": hi")
            assert await claudecode.Supervisor.count_sessions(sup) == 2

            async def never(*_: Any) -> Any:
                return claudecode.Allow()

            with pytest.raises(claudecode.InvalidOptionError) as refused:
                await claudecode.Supervisor.start_session(
                    sup, {"name": "cb", "can_use_tool": never})
            assert refused.value.option == "can_use_tool"
            await claudecode.Supervisor.terminate_session(sup, otpy.Global("extra"))

            # 4. a BEAM node, with plain terms
            erl = ErlNode(unique("erl"), COOKIE, epmd.port)
            try:
                erl.eval("pong = net_adm:ping('node_a@localhost').")
                erl.eval("S = gen_server:call({otpy_global, 'node_a@localhost'}, "
                         "{whereis, <<\"main_assistant\">>}), true = is_pid(S).")
                got = await erl.aeval(
                    "#{'__struct__' := 'claudecode.ResultMessage', result := R, "
                    "is_error := false} = gen_server:call(S, {query, <<\"from erl\">>}, 30000), "
                    "{binary:part(R, 0, 6), binary:match(R, <<\"from erl\">>) =/= nomatch}.",
                    timeout=40)
                assert got == "{<<101,99,104,111,32,35>>,true}"  # <<"echo #">>
                kinds = await erl.aeval(
                    "{ok, Ref} = gen_server:call(S, {stream, <<\"stream to erl\">>}), "
                    "Collect = fun C(Acc) -> receive {claudecode, Ref, #{'__struct__' := K}} "
                    "-> C([K | Acc]); {claudecode_done, Ref} -> lists:reverse(Acc) "
                    "after 30000 -> timeout end end, Collect([]).", timeout=40)
                assert kinds == ("['claudecode.SystemMessage','claudecode.AssistantMessage',"
                                 "'claudecode.ResultMessage']")
            finally:
                erl.stop()
    finally:
        node_a.send_signal(signal.SIGTERM)
        with trio.move_on_after(15):
            await node_a.wait()
        if node_a.returncode is None:
            node_a.kill()
            await node_a.wait()
        epmd.stop()
