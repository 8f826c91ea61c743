"""Cookies as ``erl`` treats them (issue 11, findings 1 and 11), checked against erl.

* an empty or blank cookie is refused (in code, in ``$OTPY_COOKIE``, in a file);
* a cookie file group or others can read is refused, naming the file and
  ``chmod 400`` -- ``erl`` refuses the same file;
* a missing ``~/.erlang.cookie`` is created complete and 0400 from the start
  (watched with inotify: the name appears by a link, never written or chmod-ed),
  and ``erl`` reads the same cookie from it;
* the cookie never shows in an exception, a log line or a repr, even when a
  peer with another cookie knocks.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from _dist_attack import Victim
from _dist_erl import Epmd, unique

import otpy
from otpy.dist._cookie import CookieError, create_cookie_file, read_cookie_file
from otpy.dist._epmd_io import port_please
from otpy.dist._handshake import HandshakeError
from otpy.dist._handshake_io import connect


@pytest.fixture(scope="module")
def epmd() -> Iterator[Epmd]:
    server = Epmd()
    yield server
    server.stop()


@pytest.mark.parametrize("cookie", ["", " ", "\t\n "])
async def test_an_empty_or_blank_cookie_is_refused(epmd: Epmd, cookie: str) -> None:
    with pytest.raises(CookieError, match="empty or blank cookie"):
        async with otpy.open_node(node=f"{unique('ck')}@localhost", cookie=cookie,
                                  epmd_port=epmd.port):
            pass  # pragma: no cover - never reached
    async with otpy.open_node(node=f"{unique('ck')}@localhost", cookie="fine",
                              epmd_port=epmd.port):
        with pytest.raises(CookieError, match="empty or blank cookie"):
            otpy.set_cookie("other@localhost", cookie)


def _node_in(home: Path, epmd: Epmd, *, env: dict[str, str] | None = None,
             umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """Start a distributed node without a cookie in a fresh process with ``HOME=home``."""
    code = ("import otpy, sys\n"
            "async def main():\n    print('@@COOKIE', otpy.node())\n"
            f"otpy.run(main, node='{unique('ck')}@localhost', epmd='none', "
            f"epmd_port={epmd.port})\n")
    full = {**{k: v for k, v in os.environ.items() if k != "OTPY_COOKIE"}, "HOME": str(home),
            **(env or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=full, check=False,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def _erl_cookie(home: Path, epmd: Epmd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["erl", "-noshell", "-start_epmd", "false", "-sname", unique("ckerl"), "-eval",
         'io:format("@@~s~n", [erlang:get_cookie()]), halt().'],
        capture_output=True, text=True, timeout=60, check=False, cwd=home,  # its crash dump
        env={**os.environ, "HOME": str(home), "ERL_EPMD_PORT": str(epmd.port)})


@pytest.mark.parametrize("mode", [0o644, 0o440, 0o604])
def test_a_cookie_file_others_can_read_is_refused_as_erl_refuses_it(
        epmd: Epmd, tmp_path: Path, mode: int) -> None:
    cookie = tmp_path / ".erlang.cookie"
    cookie.write_text("SECRETSECRET")
    cookie.chmod(mode)
    ours = _node_in(tmp_path, epmd)
    assert ours.returncode != 0
    assert f"cookie file {cookie} must be accessible by its owner only" in ours.stderr
    assert f"chmod 400 {cookie}" in ours.stderr and "SECRETSECRET" not in ours.stderr
    theirs = _erl_cookie(tmp_path, epmd)
    assert f"Cookie file {cookie} must be accessible by owner only" in theirs.stdout


def test_a_blank_cookie_in_the_environment_is_refused(epmd: Epmd, tmp_path: Path) -> None:
    done = _node_in(tmp_path, epmd, env={"OTPY_COOKIE": "   "})
    assert done.returncode != 0 and "empty or blank cookie" in done.stderr


@pytest.mark.parametrize(("content", "cookie"), [
    ("ABCDEF\n", "ABCDEF"), ("  spaced cookie  \n", "  spaced cookie  "), ("NO-NEWLINE", None)])
def test_a_cookie_file_reads_as_erl_reads_it(epmd: Epmd, tmp_path: Path, content: str,
                                            cookie: str | None) -> None:
    path = tmp_path / ".erlang.cookie"
    path.write_text(content)
    path.chmod(0o400)
    expected = cookie if cookie is not None else content
    assert read_cookie_file(path) == expected
    assert f"@@{expected}\n" in _erl_cookie(tmp_path, epmd).stdout


@pytest.mark.parametrize("content", ["A\tB\n", "two\nlines\n", "é\n"])
def test_a_cookie_file_with_bad_characters_is_refused_as_by_erl(epmd: Epmd, tmp_path: Path,
                                                               content: str) -> None:
    path = tmp_path / ".erlang.cookie"
    path.write_bytes(content.encode("latin-1"))
    path.chmod(0o400)
    with pytest.raises(CookieError, match="bad characters"):
        read_cookie_file(path)
    assert "Bad characters in cookie" in _erl_cookie(tmp_path, epmd).stdout


# inotify(7), for watching how the cookie file comes into being
_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE, _IN_CREATE = 0x2, 0x4, 0x8, 0x100


class _Inotify:
    def __init__(self, directory: Path) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        assert self.fd >= 0
        assert self.libc.inotify_add_watch(self.fd, str(directory).encode(), 0xFFF) >= 0

    def events(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return out
        pos = 0
        while pos < len(data):
            _wd, mask, _cookie, size = struct.unpack_from("iIII", data, pos)
            name = data[pos + 16:pos + 16 + size].rstrip(b"\0").decode()
            out.append((name, mask))
            pos += 16 + size
        return out

    def close(self) -> None:
        os.close(self.fd)


def test_a_missing_cookie_file_is_created_complete_and_0400_from_the_start(
        epmd: Epmd, tmp_path: Path) -> None:
    """Finding 11: the file was written, then chmod-ed (briefly readable by all
    under a permissive umask). Now it appears under its name by a link to a
    complete private file: no write, no chmod ever happens under that name."""
    watch = _Inotify(tmp_path)
    try:
        done = _node_in(tmp_path, epmd, umask=0)
        events = [mask for name, mask in watch.events() if name == ".erlang.cookie"]
    finally:
        watch.close()
    assert "@@COOKIE" in done.stdout, done.stderr
    path = tmp_path / ".erlang.cookie"
    assert path.stat().st_mode & 0o777 == 0o400
    assert events and events[0] & _IN_CREATE
    assert not any(m & (_IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE) for m in events), events
    cookie = path.read_text()
    assert len(cookie) == 20 and cookie.isupper()
    assert f"@@{cookie}\n" in _erl_cookie(tmp_path, epmd).stdout  # erl takes it as it is
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_creating_a_cookie_file_keeps_one_that_appeared_first(tmp_path: Path) -> None:
    path = tmp_path / "cookie"
    first = create_cookie_file(path)
    assert create_cookie_file(path) == first  # a second starter takes the first one's


async def test_the_cookie_is_never_in_an_error_a_log_line_or_a_repr(
        epmd: Epmd, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A peer with the wrong cookie knocks on a victim (another OS process): neither
    cookie shows in the error the peer gets, in the victim's log, or in ours; nor
    in the reprs of the objects that hold a cookie here."""
    ours, theirs = "OUR-COOKIE-c6b2", "VICTIM-COOKIE-91af"
    victim = Victim(epmd.port, tmp_path, cookie=theirs)
    try:
        caplog.set_level(logging.DEBUG)
        async with otpy.open_node(node=f"{unique('ck')}@localhost", cookie=ours,
                                  epmd_port=epmd.port) as node:
            assert await otpy.connect(victim.name) is False
            otpy.set_cookie(victim.name, "PER-NODE-COOKIE-77")
            assert await otpy.connect(victim.name) is False
            found = await port_please(victim.name, epmd_port=epmd.port)
            assert found is not None
            stream = await trio.open_tcp_stream("127.0.0.1", found[0])
            with pytest.raises(HandshakeError) as info:
                await connect(stream, this_node=f"{unique('raw')}@localhost",
                              peer_node=victim.name, cookie=ours, creation=1)
            dist = node.dist
            assert dist is not None
            shown = " ".join([str(info.value), repr(info.value), repr(dist), repr(dist.cookies),
                              repr(node), caplog.text, victim.log_text()])
        for secret in (ours, theirs, "PER-NODE-COOKIE-77"):
            assert secret not in shown
        assert "wrong digest" in victim.log_text()
    finally:
        victim.stop()
