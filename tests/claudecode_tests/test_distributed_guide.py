"""The distributed sessions guide and its example, checked as a reader would use them.

* ``examples/distributed_sessions.py`` runs offline as a subprocess (two
  sandbox nodes, a Pool, a sandbox SIGKILLed mid-answer) and its output
  shows what the guide promises: placement on both sandboxes, the typed
  ``StreamError(NoConnection)``, the restart on the other sandbox with the
  conversation resumed, and no CLI process left.
* Every ```` ```python ```` block of ``docs/claudecode/distributed.md``
  compiles (top-level ``await`` allowed).
* The ``claudecode sandbox`` command lines of the guide are accepted by the
  command's real argument parser.
* The guide's openssl recipe makes certificates that ``otpy.TLSConfig``
  accepts: a mutual TLS handshake succeeds for the right host name (also
  under X.509 strict checking) and fails for another one.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _session_env import alive, processes_using

import otpy
from claudecode._cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "claudecode" / "distributed.md"
EXAMPLE = ROOT / "examples" / "distributed_sessions.py"
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def _blocks(lang: str) -> list[tuple[int, str]]:
    text = GUIDE.read_text("utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2))
            for m in FENCE.finditer(text) if m.group(1) == lang]


PYTHON = _blocks("python")


# ------------------------------------------------------------------ example


def test_example_moves_a_session_off_a_killed_sandbox_and_resumes_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env["PYTHONUNBUFFERED"] = "1"
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.monotonic() - t0
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr}"
    assert elapsed < 60

    # two sandbox nodes as OS processes
    sandbox_pids = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"sandbox node (sandbox\d@localhost) is up \(OS pid (\d+)\)", out)}
    assert set(sandbox_pids) == {"sandbox1@localhost", "sandbox2@localhost"}

    # the Pool put the two sessions on different sandboxes; each CLI is a
    # child of the sandbox the session's adapter runs on
    placed = dict(re.findall(r"^  (alice|bob): session <app@localhost[\d.]+> here; "
                             r"CLI on (sandbox\d@localhost) \(OS pid \d+, a child of sandbox "
                             r"pid \d+\)$", out, re.M)[:2])
    assert set(placed) == {"alice", "bob"} and placed["alice"] != placed["bob"]
    assert "NOT a child of" not in out

    # streamed answers, with memory within a conversation
    assert ("[alice] < A sandbox node is an otpy node that runs the Claude Code CLI processes "
            "of sessions that live on another node. [prompt 1 of this conversation]") in out
    assert "[prompt 2 of this conversation]" in out

    # the kill: a typed StreamError(NoConnection) for the caller, at once
    host = placed["alice"]
    other = placed["bob"]
    assert f"<-- SIGKILL to {host}" in out
    error = re.search(r"the caller got StreamError after ([\d.]+) s \(net_ticktime 2 s\); "
                      r"its reason: NoConnection\(node='(sandbox\d@localhost)'\)", out)
    assert error is not None and error.group(2) == host
    assert float(error.group(1)) < 2.0
    assert "reason is otpy.NoConnection: True" in out

    # the supervisor restarted alice (a new pid), and bob was left alone
    restart = re.search(r"the supervisor restarted alice: (<[\w@.]+>) -> (<[\w@.]+>)", out)
    assert restart is not None and restart.group(1) != restart.group(2)
    assert "bob untouched: True" in out

    # alice runs on the other sandbox now, with her conversation resumed there
    assert ("[alice] < You asked me: 'What is a sandbox node?'; 'Why keep the session on the "
            "app node?'; 'Explain, step by step, how a sandbox node hosts a CLI.'. "
            "[prompt 4 of this conversation]") in out
    assert f"alice moved from {host} to {other}: True" in out
    history = re.search(rf"alice's stored conversation, read on {other} with "
                        r"claudecode.sandbox.history: (\d+) user and (\d+) assistant", out)
    assert history is not None and int(history.group(1)) >= 4 and int(history.group(2)) >= 3
    assert "[bob] < Yes: my sandbox was not touched" in out

    # clean stop: the killed sandbox says so, the other one exits normally,
    # and no process is left (CLIs or sandboxes)
    assert f"{host} exited with status -9 (killed above)" in out
    assert f"{other} exited with status 0\n" in out
    assert "claude processes left: 0" in out
    base_url = re.search(r"FakeAnthropic at (http://127\.0\.0\.1:\d+)", out)
    assert base_url is not None
    assert processes_using(base_url.group(1)) == []
    assert not [pid for pid in sandbox_pids.values() if alive(pid)]


# -------------------------------------------------------------------- guide


def test_the_guide_has_snippets() -> None:
    assert len(PYTHON) >= 8
    assert any("Pool(" in code for _, code in PYTHON)
    assert any("otpy.TLSConfig(" in code for _, code in PYTHON)


@pytest.mark.parametrize(("line", "code"), PYTHON, ids=[f"distributed.md:{n}" for n, _ in PYTHON])
def test_snippet_compiles(line: int, code: str) -> None:
    compile(code, f"distributed.md:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def _sandbox_commands() -> list[list[str]]:
    """The concrete ``claudecode sandbox`` commands of the guide (not the synopsis)."""
    commands = []
    for _, block in _blocks("console"):
        for command in block.replace("\\\n", " ").splitlines():
            if command.startswith("$ claudecode sandbox") and "[" not in command:
                commands.append(shlex.split(command[2:])[1:])
    return commands


def test_the_sandbox_commands_of_the_guide_parse() -> None:
    commands = _sandbox_commands()
    assert len(commands) >= 2
    for argv in commands:
        args = build_parser().parse_args(argv)
        assert args.command == "sandbox" and args.name.startswith("claude@")
    tls = [build_parser().parse_args(argv) for argv in commands if "--tls-cert" in argv]
    assert tls and all(a.tls_cert and a.tls_key and a.tls_ca for a in tls)


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> dict[str, object]:
    """A TLS handshake in memory; returns the client certificate the server saw."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for key, end in (("c", c), ("s", s)):
            if not done[key]:
                try:
                    end.do_handshake()
                    done[key] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3: the server checks the client's certificate after the
            # client's handshake is done; one read makes that visible.
            c.write(b"x")
            s_in.write(c_out.read())
            assert s.read(1) == b"x"
            peer = s.getpeercert()
            assert peer
            return dict(peer)
    raise AssertionError("the handshake did not finish")


def test_the_tls_recipe_of_the_guide_makes_working_certificates(tmp_path: Path) -> None:
    scripts = [code for _, code in _blocks("sh") if "openssl req -x509" in code]
    assert len(scripts) == 1
    subprocess.run(["bash", "-e", "-c", scripts[0]], cwd=tmp_path, check=True,
                   capture_output=True, timeout=60)

    def tls(host: str) -> otpy.TLSConfig:
        return otpy.TLSConfig(str(tmp_path / f"{host}.pem"), str(tmp_path / f"{host}.key"),
                              str(tmp_path / "ca.pem"))

    app, sandbox = tls("app1.internal"), tls("sandbox1.internal")
    for strict in (False, True):
        client, server = app.client_context(), sandbox.server_context()
        if strict:  # as Python 3.13+ does by default
            client.verify_flags |= ssl.VERIFY_X509_STRICT
            server.verify_flags |= ssl.VERIFY_X509_STRICT
        peer = _handshake(client, server, "sandbox1.internal")
        assert peer["subject"] == ((("commonName", "app1.internal"),),)  # mutual
    # the app node refuses a sandbox whose certificate names another host
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(app.client_context(), sandbox.server_context(), "sandbox2.internal")
    # and the keys are private
    assert all((p.stat().st_mode & 0o077) == 0 for p in tmp_path.glob("*.key"))


def test_otpy_test_certificates_pass_strict_verification(tmp_path: Path) -> None:
    # otpy.testing.make_test_certificates serves the TLS tests (and users' own);
    # Python 3.13's default contexts verify strictly: check that on this Python too.
    from otpy.testing import make_test_certificates

    tls = make_test_certificates(tmp_path)
    client, server = tls.client_context(), tls.server_context()
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    server.verify_flags |= ssl.VERIFY_X509_STRICT
    peer = _handshake(client, server, "localhost")
    assert peer["subject"] == ((("commonName", "localhost"),),)
