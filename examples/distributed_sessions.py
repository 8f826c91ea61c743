"""Distributed sessions: the sessions stay here, their CLIs run on sandbox nodes.

Run it with ``python examples/distributed_sessions.py`` (offline, about 10 s).
It builds this little cluster on one machine, over loopback::

    app@localhost (this program)                sandbox1@localhost (OS process)
      claudecode.Supervisor "sessions"           └── CLI of one session
        ├── alice  (Pool: sandbox1, sandbox2)    sandbox2@localhost (OS process)
        └── bob    (Pool: sandbox1, sandbox2)    └── CLI of the other

and then:

1. makes this program the app node and starts two sandbox nodes as
   subprocesses (this file run as ``... sandbox NAME COOKIE_FILE
   EPMD_PORT``, which calls ``claudecode.sandbox.serve`` as the
   ``claudecode sandbox`` command does, but listening on loopback only);
   the app node's embedded EPMD, on a free port, is the private name server
   of the three;
2. starts FakeAnthropic here, a scripted Messages API that the real CLIs
   on the sandboxes talk to, so nothing leaves the machine;
3. runs a ``claudecode.Supervisor`` of two sessions whose adapter is
   ``Pool([sandbox1, sandbox2])``: each session lands on the least-loaded
   sandbox, and this program shows where each CLI runs;
4. streams answers, then kills (SIGKILL) the sandbox that runs alice's CLI
   in the middle of an answer: the caller gets ``StreamError`` with the
   reason ``otpy.NoConnection``, the supervisor restarts alice, the Pool
   puts her on the other sandbox, and her conversation is resumed there
   (both sandboxes share her working directory and the CLI's history
   directory, as they would on one network file system);
5. stops everything and checks that no CLI process is left.

It needs the pinned CLI (installed on first use with ``claudecode install-cli``).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

import claudecode
import otpy
from claudecode._install import PINNED_CLI_VERSION, install_cli
from claudecode.adapters import Pool
from claudecode.testing import FakeAnthropic, RecordedRequest, Text, Turn

TICK = 2.0
"""net_ticktime of every node: a silent peer counts as gone after this many seconds."""

LONG_PROMPT = "Explain, step by step, how a sandbox node hosts a CLI."

ANSWERS = {
    "What is a sandbox node?": (
        "A sandbox node is an otpy node that runs the Claude Code CLI processes of sessions "
        "that live on another node."
    ),
    "Why keep the session on the app node?": (
        "Because a session is only a light GenServer, while its CLI is a heavy process: "
        "the two scale apart."
    ),
    "What does a Pool do?": (
        "It places each session on the sandbox that runs the fewest CLIs right now."
    ),
    "Still there?": "Yes: my sandbox was not touched, nor was my conversation.",
    LONG_PROMPT: " ".join(
        f"Step {i}: the sandbox starts an adapter process, which runs the CLI." for i in
        range(1, 41)
    ),
}

_open_line = False  # a streamed answer is being printed on the current line


def say(text: str = "") -> None:
    """Print a line (ending a streamed line first, if one is open)."""
    global _open_line
    if _open_line:
        print(flush=True)
        _open_line = False
    print(text, flush=True)


def end_line() -> None:
    """End a streamed line, if one is open."""
    global _open_line
    if _open_line:
        print(flush=True)
        _open_line = False


def write(text: str) -> None:
    """Print streamed text without ending the line."""
    global _open_line
    print(text, end="", flush=True)
    _open_line = True


class _LogToConsole(logging.Handler):
    """The library's warnings (placement, restarts) as lines among ours."""

    def emit(self, record: logging.LogRecord) -> None:
        say(f"  [log] {record.name}: {record.getMessage()}")


# ------------------------------------------------------------- the fake model


def user_prompts(request: RecordedRequest) -> list[str]:
    """The prompts the user typed in this conversation, oldest first.

    The CLI sends the whole conversation with every request (after a resume
    too), so this is what the model "remembers". Blocks the CLI adds for its
    own context (``<system-reminder>``) are left out.

    Args:
        request: a Messages API request.

    Returns:
        The texts of the user's prompts.
    """
    prompts: list[str] = []
    for message in request.messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict) and block.get("type") == "text":
                text = str(block.get("text", ""))
                if text and not text.lstrip().startswith("<system-reminder>"):
                    prompts.append(text)
    return prompts


def offline_reply(request: RecordedRequest) -> Turn:
    """The fake model: canned answers, streamed word by word.

    Every answer ends with the number of prompts the model has seen in this
    conversation; asked what was said before, it lists the earlier prompts.

    Args:
        request: the CLI's request.

    Returns:
        The streamed reply.
    """
    prompts = user_prompts(request)
    prompt = request.last_user_text
    if prompt == "What did I ask you before?":
        earlier = "; ".join(repr(p) for p in prompts[:-1])
        text = f"You asked me: {earlier}."
    else:
        text = ANSWERS.get(prompt, f"You said: {prompt}")
    if prompt != LONG_PROMPT:
        text += f" [prompt {len(prompts)} of this conversation]"
    delay = 0.1 if prompt == LONG_PROMPT else 0.01
    return Turn([Text(text, chunks=len(text.split(" ")))], chunk_delay=delay)


# ---------------------------------------------------------------- sandboxes


def free_port() -> int:
    """A TCP port that is free on loopback now (for the private EPMD)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_sandbox(name: str, cookie_file: str, epmd_port: int) -> None:
    """The sandbox process: ``claudecode sandbox``, listening on loopback only.

    This is what ``claudecode sandbox --name NAME --cookie-file FILE
    --workspace-root DIR --allow-env ANTHROPIC_BASE_URL --epmd-port PORT
    --net-ticktime 2`` runs, plus ``listen_host``: the command listens on every
    interface, this example on 127.0.0.1 only. Sessions' directories must lie
    in the workspace root (here the demo's temporary directory); the sessions
    may point the CLI at FakeAnthropic (``ANTHROPIC_BASE_URL``) because the
    sandbox allows that variable.

    Args:
        name: the node name.
        cookie_file: the file holding the cookie.
        epmd_port: the private EPMD's port.
    """
    from claudecode.sandbox import serve

    logging.basicConfig(level=logging.ERROR, format=f"  [{name}] %(levelname)s %(message)s")
    cookie = Path(cookie_file).read_text().strip()
    serve(name, cookie, workspace_root=str(Path(cookie_file).parent),
          allow_env=["ANTHROPIC_BASE_URL"], epmd_port=epmd_port, net_ticktime=TICK,
          listen_host="127.0.0.1")


class Sandbox:
    """A sandbox node in its own OS process."""

    def __init__(self, name: str, cookie_file: Path, epmd_port: int) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "sandbox", name, str(cookie_file),
             str(epmd_port)],
            stdout=subprocess.PIPE,
        )

    @property
    def pid(self) -> int:
        """The sandbox's OS process id."""
        return self.proc.pid

    async def ready(self) -> None:
        """Wait until the node is up (it prints ``@@READY <name>``)."""
        assert self.proc.stdout is not None
        with trio.fail_after(20):
            while True:
                line = await trio.to_thread.run_sync(self.proc.stdout.readline)
                if not line:
                    raise RuntimeError(f"sandbox {self.name} exited during start-up")
                if line.startswith(b"@@READY"):
                    return

    async def stop(self) -> int:
        """SIGTERM (the sandbox shuts its CLIs down), SIGKILL after 10 s.

        Returns:
            The exit status.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await trio.to_thread.run_sync(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return await trio.to_thread.run_sync(self.proc.wait)


def parent_of(pid: int) -> int:
    """The parent process id of ``pid`` (from /proc), 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def processes_using(base_url: str) -> list[int]:
    """Live processes whose environment points at ``base_url``: the CLIs of this run."""
    needle = f"ANTHROPIC_BASE_URL={base_url}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        if needle in environ and stat[stat.rindex(b")") + 2:][:1] != b"Z":
            found.append(int(entry))
    return found


# ------------------------------------------------------------------ the demo


async def ask(session: str, prompt: str) -> None:
    """Stream one answer, printing the text as it arrives."""
    say(f"[{session}] > {prompt}")
    write(f"[{session}] < ")
    async for delta in claudecode.stream(session, prompt, timeout=60).text_deltas():
        write(delta)
    end_line()


async def where(session: str, boxes: list[Sandbox]) -> Sandbox:
    """Print where a session's CLI runs, and return that sandbox."""
    info = await claudecode.adapter_info(session)
    node = str(info["adapter_pid"].node)
    box = next(b for b in boxes if b.name == node)
    host = "a child of" if parent_of(info["os_pid"]) == box.pid else "NOT a child of"
    say(f"  {session}: session {otpy.whereis(session)} here; CLI on {node} "
        f"(OS pid {info['os_pid']}, {host} sandbox pid {box.pid})")
    return box


async def kill_mid_stream(session: str, box: Sandbox) -> None:
    """Stream a long answer and SIGKILL the sandbox hosting the CLI after a few words."""
    say(f"[{session}] > {LONG_PROMPT}")
    write(f"[{session}] < ")
    killed_at = 0.0
    deltas = 0
    try:
        async for delta in claudecode.stream(session, LONG_PROMPT, timeout=60).text_deltas():
            write(delta)
            deltas += 1
            if deltas == 12:
                box.proc.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                write(f" <-- SIGKILL to {box.name}")
    except claudecode.StreamError as err:
        elapsed = time.monotonic() - killed_at
        say(f"  the caller got StreamError after {elapsed:.2f} s "
            f"(net_ticktime {TICK:g} s); its reason: {err.reason!r}")
        say(f"  reason is otpy.NoConnection: {isinstance(err.reason, otpy.NoConnection)}")
    else:
        raise RuntimeError("the stream was expected to fail")


async def main(tmp: Path, cookie_file: Path, epmd_port: int) -> int:
    """The app node's program (see the module docstring)."""
    started = time.monotonic()
    say(f"app node {otpy.node()} is up; private EPMD on port {epmd_port}")
    boxes = [Sandbox(f"sandbox{i}@localhost", cookie_file, epmd_port) for i in (1, 2)]
    try:
        for box in boxes:
            await box.ready()
            say(f"sandbox node {box.name} is up (OS pid {box.pid})")
        return await demo(tmp, boxes, started)
    finally:
        for box in boxes:
            await box.stop()


async def demo(tmp: Path, boxes: list[Sandbox], started: float) -> int:
    """Steps 2-5 of the module docstring."""
    async with FakeAnthropic.serve(log_requests=False, default=offline_reply) as fake:
        say(f"FakeAnthropic at {fake.base_url}: the real Claude Code CLI "
            f"{PINNED_CLI_VERSION} on the sandboxes talks to it")
        shared = tmp / "shared"  # mounted at the same path on every sandbox
        env = {"HOME": str(shared / "home"), "CLAUDE_CONFIG_DIR": str(shared / "claude"),
               **fake.env(max_retries=0)}
        pool = Pool([b.name for b in boxes], connect_timeout=2.0)

        say("\n1. A supervisor of two sessions; the Pool places each one on a sandbox.")
        sup = await claudecode.Supervisor.start_link([], name="sessions")
        for name in ("alice", "bob"):
            await claudecode.Supervisor.start_session(sup, {
                "name": name, "adapter": pool, "cwd": str(shared / "workspaces" / name),
                "env": env, "include_partial_messages": True,
            })
            # The CLI starts now rather than on the first query, so the next
            # session sees this sandbox's load.
            await claudecode.prewarm(name)
            await where(name, boxes)

        say("\n2. Streamed answers; the sessions do not know where their CLI runs.")
        await ask("alice", "What is a sandbox node?")
        await ask("alice", "Why keep the session on the app node?")
        await ask("bob", "What does a Pool do?")

        say("\n3. Kill the sandbox that runs alice's CLI (SIGKILL) in mid-answer.")
        host = await where("alice", boxes)
        bob_before = otpy.whereis("bob")
        old = otpy.whereis("alice")
        await kill_mid_stream("alice", host)

        with trio.fail_after(15):
            while otpy.whereis("alice") in (None, old):
                await trio.sleep(0.02)
        say(f"  the supervisor restarted alice: {old} -> {otpy.whereis('alice')}")
        say(f"  bob untouched: {otpy.whereis('bob') == bob_before}")

        say("\n4. alice again: on the other sandbox, with her conversation resumed.")
        await ask("alice", "What did I ask you before?")
        moved = await where("alice", boxes)
        say(f"  alice moved from {host.name} to {moved.name}: {moved is not host}")
        # The transcripts are where the CLIs run: read them there, by rpc.
        session_id = await claudecode.get_session_id("alice")
        entries = await otpy.rpc.call(
            moved.name, "claudecode.sandbox", "history",
            ["conversation", [session_id, str(shared / "workspaces" / "alice")],
             {"config_dir": str(shared / "claude")}])
        kinds = [entry.get("type") for entry in entries]
        say(f"  alice's stored conversation, read on {moved.name} with claudecode.sandbox."
            f"history: {kinds.count('user')} user and {kinds.count('assistant')} assistant "
            f"messages")
        await ask("bob", "Still there?")

        say("\n5. Stop the supervisor and the sandboxes.")
        otpy.unlink(sup)
        await otpy.stop(sup, otpy.Shutdown())
        for box in boxes:
            status = await box.stop()
            killed = " (killed above)" if status == -signal.SIGKILL else ""
            say(f"  {box.name} exited with status {status}{killed}")
        with trio.move_on_after(5):  # a killed sandbox's CLI gets its parent-death signal
            while processes_using(fake.base_url):
                await trio.sleep(0.05)
        left = processes_using(fake.base_url)
        say(f"  claude processes left: {len(left)}")
    say(f"\nDone in {time.monotonic() - started:.1f} s.")
    return 1 if left else 0


def run_demo() -> int:
    """Set up the private cluster's cookie and EPMD port, then run the app node."""
    install_cli()  # the pinned CLI (a no-op when installed)
    logging.basicConfig(level=logging.WARNING, handlers=[_LogToConsole()])
    say("claudecode distributed sessions: sessions here, CLIs on sandbox nodes\n")
    with tempfile.TemporaryDirectory(prefix="claudecode-dist-") as tmp_dir:
        tmp = Path(tmp_dir).resolve()
        cookie = secrets.token_urlsafe(24)
        cookie_file = tmp / "cookie"
        cookie_file.touch(mode=0o600)
        cookie_file.write_text(cookie)
        epmd_port = free_port()
        status: int = otpy.run(main, tmp, cookie_file, epmd_port, node="app@localhost",
                               cookie=cookie, epmd_port=epmd_port, net_ticktime=TICK,
                               listen_host="127.0.0.1", epmd="embedded")
        return status


if __name__ == "__main__":
    if sys.argv[1:2] == ["sandbox"]:
        run_sandbox(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(run_demo())
