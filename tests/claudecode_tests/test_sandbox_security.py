"""The sandbox's trust boundary, probed as a holder of the cookie would probe it.

A real ``claudecode sandbox`` process; attackers are an ``erl`` shell holding
the cookie (as in issue 11) and this test process as a Python node calling
``otpy.rpc``. Every line of the threat model in docs/claudecode/distributed.md
("A cookie holder can ... / cannot ...") is checked here, and after each attack
the sandbox still serves its other connections (erl and Python alike).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _session_env import fake, no_orphans, opts
from test_node_adapter import COOKIE, Sandbox, app_node, epmd_port

import claudecode
import otpy
from claudecode.adapters import Node
from claudecode.sandbox import RPC_FUNCTIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the erl helpers
from _dist_erl import ErlNode, unique

__all__ = ["epmd_port", "fake", "no_orphans", "opts"]  # fixtures used by name

MODULE = "claudecode.sandbox"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox-root")


@pytest.fixture(scope="module")
def box(epmd_port: int, root: Path) -> Iterator[Sandbox]:
    """A sandbox whose own environment holds the cookie twice (as OTPY_COOKIE and
    inside another variable) and one harmless variable a CLI may inherit."""
    sandbox = Sandbox(epmd_port, root, {"OTPY_COOKIE": COOKIE,
                                        "DEPLOY_NOTE": f"cookie={COOKIE};",
                                        "SANDBOX_VISIBLE": "yes"})
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def erl(epmd_port: int, box: Sandbox) -> Iterator[ErlNode]:
    node = ErlNode(f"{unique('attacker')}@localhost", COOKIE, epmd_port)
    yield node
    node.stop()


def erl_rpc(erl: ErlNode, box: Sandbox, function: str, args: str) -> str:
    return erl.eval(f"rpc:call('{box.name}', '{MODULE}', '{function}', {args}, 10000).")


async def still_serves(erl: ErlNode, box: Sandbox) -> None:
    """The sandbox answers erl and this Python node after an attack."""
    assert await trio.to_thread.run_sync(erl_rpc, erl, box, "running_clis", "[]") == "0"
    assert await otpy.rpc.call(box.name, MODULE, "running_clis", [], timeout=10) == 0


async def refused(box: Sandbox, function: str, args: list[Any]) -> str:
    """Call the sandbox; return the text of the error it answered with."""
    with pytest.raises(otpy.rpc.RPCError) as info:
        await otpy.rpc.call(box.name, MODULE, function, args, timeout=10)
    return str(info.value.reason)


def inside(opts: dict[str, Any], root: Path, work: str) -> dict[str, Any]:
    """Session options with cwd, HOME and the CLI's config directory under ``root``."""
    home = root / "home"
    home.mkdir(exist_ok=True)
    env = {**opts["env"], "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude")}
    return {**opts, "cwd": str(root / work), "env": env}


def spec(root: Path, **changes: Any) -> dict[str, Any]:
    """A launch spec like the Node adapter's, with ``changes``."""
    work = root / "work"
    work.mkdir(exist_ok=True)
    base: dict[str, Any] = {
        "args": ["--output-format", "stream-json", "--verbose", "--input-format",
                 "stream-json"],
        "env": {}, "inherit_env": "all", "unset": [], "cwd": str(work),
        "max_buffer_size": 1 << 20, "control_timeout": 60.0, "initialize": {},
        "callback_timeout": 30.0, "hooks": []}
    base.update(changes)
    return base


# ---------------------------------------------------------------- rpc surface


async def test_only_the_listed_functions_answer_rpc(epmd_port: int, box: Sandbox,
                                                     erl: ErlNode) -> None:
    """A cookie holder cannot call private functions, dunders, imported names or
    anything else but `RPC_FUNCTIONS` (issue 11: ``'_import'`` read the sandbox's
    environment, ``'__setattr__'`` broke ``running_clis``)."""
    read_env = erl_rpc(erl, box, "_import", '[<<"os:environ._data">>]')
    assert "not_allowed" in read_env and "ANTHROPIC" not in read_env
    assert "not_allowed" in erl_rpc(erl, box, "__setattr__", '[<<"_hosted">>, 42]')
    async with app_node(epmd_port):
        for name in ("_hosted", "_plain", "serve", "request_from_raw", "policy", "Policy",
                     "resolve", "install_cli", "__getattribute__", "__dict__", "_main"):
            assert "not_allowed" in await refused(box, name, []), name
        assert sorted(RPC_FUNCTIONS) == ["capacity", "check_cli", "history", "make_workspace",
                                         "running_clis", "start_adapter"]
        await still_serves(erl, box)  # running_clis works: __setattr__ did nothing


# ------------------------------------------------------- what a caller decides


async def test_a_caller_cannot_choose_the_executable(epmd_port: int, box: Sandbox,
                                                     erl: ErlNode, root: Path) -> None:
    """Issue 11: ``start_adapter`` with ``cli_path => "/bin/sh"`` ran ``id`` as the
    sandbox's user. The sandbox runs only the CLI it was started with."""
    marker = root / "pwned"
    answer = erl.eval(
        f"case rpc:call('{box.name}', '{MODULE}', start_adapter, [self(), "
        f'#{{<<"cli_path">> => <<"/bin/sh">>, <<"args">> => [<<"-c">>, '
        f'<<"id > {marker}">>], <<"cwd">> => <<"{root}">>, <<"max_buffer_size">> => 65536, '
        f'<<"control_timeout">> => 5}}, undefined]) of '
        '{badrpc, {\'EXIT\', {python_exception, <<"SandboxPolicyError">>, _, _}}} -> refused; '
        "Other -> Other end.")
    assert answer == "refused"
    await trio.sleep(0.5)
    assert not marker.exists()
    async with app_node(epmd_port):
        why = await refused(box, "check_cli", ["/bin/sh"])
        assert "cli_path: this sandbox runs its own CLI" in why
        me = otpy.self()
        why = await refused(box, "start_adapter", [me, spec(root, cli_path="/bin/sh"), None])
        assert "cli_path" in why
        why = await refused(box, "start_adapter", [me, spec(root, args=[
            "--output-format", "stream-json", "--verbose", "--input-format", "stream-json",
            "--unknown-flag=1"]), None])
        assert "CLI flag '--unknown-flag' is not one the session options produce" in why
        await still_serves(erl, box)


@pytest.mark.parametrize("variable", ["PATH", "LD_PRELOAD", "NODE_OPTIONS", "BASH_ENV",
                                      "OTPY_COOKIE", "ANTHROPIC_BASE_URL_TYPO"])
async def test_a_caller_sets_only_allowed_environment_variables(
        epmd_port: int, box: Sandbox, erl: ErlNode, root: Path, variable: str) -> None:
    """A caller cannot set variables that choose what code runs (or any variable
    outside the allow-list), nor point the directory variables outside the root."""
    async with app_node(epmd_port):
        me = otpy.self()
        why = await refused(box, "start_adapter", [me, spec(root, env={variable: "/tmp/x"}),
                                                   None])
        assert f"environment variable '{variable}' may not be set by a caller" in why
        why = await refused(box, "start_adapter", [me, spec(root, env={"HOME": "/root"}), None])
        assert "$HOME '/root' is outside the sandbox's workspace root" in why
        await still_serves(erl, box)


async def test_a_sessions_directories_lie_inside_the_workspace_root(
        epmd_port: int, box: Sandbox, erl: ErlNode, root: Path,
        tmp_path: Path) -> None:
    """cwd (and history's config_dir) must resolve inside --workspace-root, symlinks
    included; make_workspace creates nothing outside it."""
    outside = tmp_path / "outside"
    (root / "escape").symlink_to(tmp_path, target_is_directory=True)
    async with app_node(epmd_port):
        me = otpy.self()
        for cwd in ("/etc", str(root / ".." / "elsewhere"), str(root / "escape" / "outside")):
            why = await refused(box, "make_workspace", [cwd])
            assert "outside the sandbox's workspace root" in why, cwd
            why = await refused(box, "start_adapter", [me, spec(root, cwd=cwd), None])
            assert "outside the sandbox's workspace root" in why, cwd
        assert not outside.exists()
        inside = await otpy.rpc.call(box.name, MODULE, "make_workspace", ["team/a"], timeout=10)
        assert inside == str(root.resolve() / "team" / "a") and Path(inside).is_dir()
        why = await refused(box, "history", ["list_projects", [], {"config_dir": "/"}])
        assert "config_dir '/' is outside" in why
        why = await refused(box, "history", ["list_projects", [], {"config": "/"}])
        assert "only the keywords config_dir, project_path and limit" in why
        await still_serves(erl, box)


async def test_remote_hooks_are_only_those_the_sandbox_allows(
        epmd_port: int, box: Sandbox, erl: ErlNode, root: Path) -> None:
    """A where='remote' hook names a function the sandbox imports: only those its
    --allow-hook list names (here ``_remote_hooks:*``)."""
    async with app_node(epmd_port):
        me = otpy.self()
        for ref in ("os:system", "subprocess:getoutput", "_remote_hooks:_private",
                    "_remote_hooks:json", "claudecode.sandbox:_import"):
            hooks = [{"event": "PreToolUse", "matcher": None, "timeout": None, "ref": ref}]
            why = await refused(box, "start_adapter", [me, spec(root, hooks=hooks), None])
            assert "is not allowed on this sandbox" in why, ref
        await still_serves(erl, box)


# ------------------------------------------------------------ what a caller can


async def test_a_caller_runs_sessions_with_its_key_and_never_sees_the_cookie(
        epmd_port: int, box: Sandbox, erl: ErlNode, root: Path, opts: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A cookie holder can start the sandbox's CLI with its own API key and the
    documented options, in a workspace under the root; the CLI inherits the
    sandbox's environment but never the cookie (not as OTPY_COOKIE, not inside
    another variable). A local session's CLI does not get OTPY_COOKIE either."""
    work = root / "session"
    async with app_node(epmd_port):
        session = await claudecode.start_link(
            adapter=Node(box.name), **{**inside(opts, root, "session"),
                                       "api_key": "sk-caller-own-key", "model": "claude-x"})
        assert (await claudecode.stream(session, "hi").final_text()).startswith("echo")
        cli = (await claudecode.adapter_info(session))["os_pid"]
        environ = dict(item.split(b"=", 1) for item in
                       Path(f"/proc/{cli}/environ").read_bytes().split(b"\0") if b"=" in item)
        assert COOKIE.encode() not in b"".join(environ.values())
        assert b"OTPY_COOKIE" not in environ and b"DEPLOY_NOTE" not in environ
        assert environ[b"SANDBOX_VISIBLE"] == b"yes"
        assert environ[b"ANTHROPIC_API_KEY"] == b"sk-caller-own-key"
        assert environ[b"PWD"] == str(work.resolve()).encode()
        assert Path(f"/proc/{cli}/cwd").resolve() == work.resolve()
        await claudecode.stop(session)
        await still_serves(erl, box)
    monkeypatch.setenv("OTPY_COOKIE", COOKIE)  # an app node configured through the env
    async with otpy.open_node():
        local = await claudecode.start_link(**opts)
        await claudecode.stream(local, "hi").final_text()
        cli = (await claudecode.adapter_info(local))["os_pid"]
        assert COOKIE.encode() not in Path(f"/proc/{cli}/environ").read_bytes()
        await claudecode.stop(local)


# ------------------------------------------------------------- start-up checks


def _sandbox_cli(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "claudecode._cli", "sandbox", "--name",
         f"{unique('bad')}@localhost", "--workspace-root", str(tmp), *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, **(env or {})})


@pytest.mark.parametrize("content", ["", "   \n", "\n"])
def test_the_sandbox_refuses_an_empty_or_blank_cookie(tmp_path: Path, content: str) -> None:
    """Issue 11: with an empty cookie file the sandbox started and let a peer with
    the cookie "" in. Now it refuses to start, as erl does ("Too short cookie")."""
    cookie = tmp_path / "cookie"
    cookie.write_text(content)
    cookie.chmod(0o400)
    done = _sandbox_cli(tmp_path, "--cookie-file", str(cookie))
    assert done.returncode == 2
    assert f"cookie file {cookie} holds no cookie (empty or blank)" in done.stderr
    assert "@@READY" not in done.stdout


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_the_sandbox_refuses_a_cookie_file_others_can_read(tmp_path: Path, mode: int) -> None:
    """As erl ("must be accessible by owner only"): the message names the file and
    the fix, and never the cookie."""
    cookie = tmp_path / "cookie"
    cookie.write_text("a-cookie-value")
    cookie.chmod(mode)
    done = _sandbox_cli(tmp_path, "--cookie-file", str(cookie))
    assert done.returncode == 2
    assert f"cookie file {cookie} must be accessible by its owner only" in done.stderr
    assert f"chmod 400 {cookie}" in done.stderr
    assert "a-cookie-value" not in done.stderr + done.stdout


@pytest.mark.parametrize("variable", ["PATH", "LD_PRELOAD", "NODE_OPTIONS", "OTPY_COOKIE"])
def test_an_operator_cannot_allow_variables_that_choose_code(tmp_path: Path,
                                                             variable: str) -> None:
    cookie = tmp_path / "cookie"
    cookie.write_text("a-cookie-value")
    cookie.chmod(0o400)
    done = _sandbox_cli(tmp_path, "--cookie-file", str(cookie), "--allow-env", variable)
    assert done.returncode == 2 and f"--allow-env {variable}: never allowed" in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--allow-hook", "_remote_hooks:_private"], "--allow-hook: rpc_allow entry"),
    (["--allow-cli-flag=x"], "--allow-cli-flag x: not a '--flag'"),
    (["--workspace-root", "/nonexistent/root"], "--workspace-root /nonexistent/root is not a "
                                                "directory"),
])
def test_a_malformed_sandbox_rule_stops_it_at_start(tmp_path: Path, args: list[str],
                                                    message: str) -> None:
    cookie = tmp_path / "cookie"
    cookie.write_text("a-cookie-value")
    cookie.chmod(0o400)
    done = _sandbox_cli(tmp_path, "--cookie-file", str(cookie), *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


# ------------------------------------------------- what a cookie holder can do


async def test_a_cookie_holder_can_run_commands_through_the_clis_options(
        epmd_port: int, box: Sandbox, erl: ErlNode, root: Path, opts: dict[str, Any]) -> None:
    """The threat model's first 'can': a stdio MCP server in the session options is
    a command the CLI runs as the sandbox's user (hence OS-level isolation)."""
    marker = root / "ran-as"
    async with app_node(epmd_port):
        session = await claudecode.start_link(
            adapter=Node(box.name),
            mcp_servers={"probe": {"type": "stdio", "command": "/bin/sh",
                                   "args": ["-c", f"id -u > {marker}"]}},
            **inside(opts, root, "mcp"))
        await claudecode.stream(session, "hi").final_text()
        with trio.fail_after(20):
            while not marker.exists() or not marker.read_text():
                await trio.sleep(0.1)
        assert int(marker.read_text()) == os.stat(f"/proc/{box.pid}").st_uid
        await claudecode.stop(session)
        await still_serves(erl, box)


async def test_a_cookie_holder_can_kill_another_sessions_adapter(
        epmd_port: int, box: Sandbox, erl: ErlNode, root: Path, opts: dict[str, Any]) -> None:
    """Any process on the sandbox can be sent an exit signal by a node holding the
    cookie, as in Erlang: the session whose adapter is killed ends."""
    from otpy.dist._etf import term_to_binary

    async with app_node(epmd_port):
        otpy.trap_exits(True)
        session = await claudecode.start_link(adapter=Node(box.name),
                                              **inside(opts, root, "victim"))
        await claudecode.stream(session, "hi").final_text()
        adapter = (await claudecode.adapter_info(session))["adapter_pid"]
        pid = ",".join(str(b) for b in term_to_binary(adapter))
        await trio.to_thread.run_sync(erl.eval, f"exit(binary_to_term(<<{pid}>>), kill).")
        exit_msg = await otpy.receive(otpy.Exit, timeout=10)
        assert exit_msg.pid == session
        await still_serves(erl, box)


async def test_a_cookie_holder_reads_history_and_load(epmd_port: int, box: Sandbox,
                                                      erl: ErlNode, root: Path) -> None:
    async with app_node(epmd_port):
        config = root / "home" / ".claude"
        config.mkdir(parents=True, exist_ok=True)
        projects = await otpy.rpc.call(box.name, MODULE, "history",
                                       ["list_projects", [], {"config_dir": str(config)}],
                                       timeout=10)
        assert isinstance(projects, list) and all(isinstance(p, str) for p in projects)
        assert await otpy.rpc.call(box.name, MODULE, "running_clis", [], timeout=10) == 0


async def test_the_api_base_url_only_when_the_operator_allows_it(
        epmd_port: int, tmp_path: Path, opts: dict[str, Any]) -> None:
    """Without --allow-env ANTHROPIC_BASE_URL a caller cannot send the CLI's
    requests (and the sandbox's key) to a server of its choice."""
    strict = Sandbox(epmd_port, tmp_path, no_base_url=True)
    try:
        async with app_node(epmd_port):
            with pytest.raises(claudecode.ClaudeCodeError) as info:
                session = await claudecode.start_link(adapter=Node(strict.name), **opts)
                await claudecode.stream(session, "hi").final_text()
            assert "ANTHROPIC_BASE_URL" in str(info.value)
    finally:
        strict.stop()


def test_an_operator_can_allow_an_extra_cli_flag(tmp_path: Path) -> None:
    from claudecode._options import BASE_ARGS
    from claudecode.sandbox import Policy

    strict = Policy.make("/bin/true", tmp_path)
    lenient = Policy.make("/bin/true", tmp_path, allow_cli_flags=["--foo"])
    args = [*BASE_ARGS, "--model=m", "--foo=1"]
    with pytest.raises(ValueError, match="CLI flag '--foo'"):
        strict.args(args)
    assert lenient.args(args) == args
    assert "s3cret" not in repr(Policy.make("/bin/true", tmp_path, cookie="s3cret"))


def test_the_sandboxs_flag_list_covers_every_flag_the_options_produce() -> None:
    """Every flag `to_cli_args` can write is one the sandbox accepts (no drift)."""
    import inspect
    import re

    from claudecode._options import to_cli_args
    from claudecode.sandbox import CLI_FLAGS

    source = inspect.getsource(to_cli_args)
    produced = set(re.findall(r'(?:val|flag)\("(--[\w-]+)"', source))
    produced |= set(re.findall(r'args\.append\("(--[\w-]+)"\)', source))
    assert produced and produced <= CLI_FLAGS, produced - CLI_FLAGS
