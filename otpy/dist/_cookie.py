"""The distribution cookie: checked, read and created the way ``erl`` does.

A cookie is the one shared secret of a cluster: whoever knows it can join as a
node. So, as ``erl``:

* an empty cookie is refused ("too short"), and so is a blank one (``erl``
  takes spaces; we do not: a cookie of spaces is a configuration mistake);
* a cookie file must be readable by its owner only: one that group or others
  can read is refused, with the file named and ``chmod 400`` suggested;
* a missing ``~/.erlang.cookie`` is created with 20 random capitals, mode
  0400 from its first byte on (written to a private temporary file and linked
  into place, so no one ever sees it partly written or readable by others).

The cookie never appears in an exception, a log line or a ``repr``.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

__all__ = ["CookieError", "check_cookie", "create_cookie_file", "default_cookie",
           "read_cookie_file"]


class CookieError(ValueError):
    """A cookie, or a cookie file, that must not be used (the message says why)."""


def check_cookie(cookie: object) -> str:
    """Check a cookie given in code or in the environment.

    Args:
        cookie: the cookie.

    Returns:
        The cookie, unchanged.

    Raises:
        CookieError: not a str, empty or blank, or not Latin-1 text.
    """
    if not isinstance(cookie, str):
        raise CookieError(f"a cookie is a str, not {type(cookie).__name__}")
    if not cookie.strip():
        raise CookieError("empty or blank cookie: a cookie must hold at least one character "
                          "other than white space")
    try:
        cookie.encode("latin-1")
    except UnicodeEncodeError:
        raise CookieError("a cookie must be Latin-1 text") from None
    return cookie


def read_cookie_file(path: str | os.PathLike[str]) -> str:
    """Read a cookie file as ``erl`` reads ``~/.erlang.cookie``.

    The cookie is the file's text without its trailing newline; it must be
    printable ASCII (as for ``erl``) and not blank, and the file must not be
    readable or writable by group or others.

    Args:
        path: the file.

    Returns:
        The cookie.

    Raises:
        CookieError: the file is open to group or others, or holds no usable cookie.
        OSError: the file cannot be read.
    """
    fd = os.open(path, os.O_RDONLY)  # a symlink is followed (a mounted secret), as by erl
    try:
        mode = os.fstat(fd).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CookieError(
                f"cookie file {os.fspath(path)} must be accessible by its owner only "
                f"(its mode is {stat.S_IMODE(mode):04o}); run: chmod 400 {os.fspath(path)}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(4097)
    finally:
        os.close(fd)
    if len(raw) > 4096:
        raise CookieError(f"cookie file {os.fspath(path)} is longer than 4096 bytes")
    text = raw.rstrip(b"\n")
    if not text.strip():
        raise CookieError(f"cookie file {os.fspath(path)} holds no cookie (empty or blank)")
    if any(b < 32 or b > 126 for b in text):
        raise CookieError(f"cookie file {os.fspath(path)} holds bad characters (a cookie is "
                          "one line of printable ASCII)")
    return text.decode("ascii")


def create_cookie_file(path: str | os.PathLike[str]) -> str:
    """Create a cookie file with a random cookie, mode 0400, atomically.

    The cookie is written to a new private file next to ``path`` (created
    with mode 0400, so never readable by others) and linked to ``path``
    only once complete. If ``path`` appeared meanwhile, that file wins.

    Args:
        path: where the cookie file goes.

    Returns:
        The cookie in ``path`` (ours, or the one that was there first).

    Raises:
        CookieError / OSError: as `read_cookie_file`, or the file cannot be made.
    """
    target = Path(path)
    cookie = "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(20))
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    try:
        try:
            os.write(fd, cookie.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, target)
        except FileExistsError:
            pass  # created meanwhile (another node starting): use that one
    finally:
        os.unlink(tmp)
    return read_cookie_file(target)


def default_cookie() -> str:
    """The cookie when none is given: ``$OTPY_COOKIE``, else ``~/.erlang.cookie``
    (created like ``erl`` does if missing: 20 random capitals, mode 0400).

    Returns:
        The cookie.

    Raises:
        CookieError: ``$OTPY_COOKIE`` is blank, or the cookie file is open to
            others or holds no usable cookie.
    """
    env = os.environ.get("OTPY_COOKIE")
    if env:
        return check_cookie(env)
    path = Path.home() / ".erlang.cookie"
    try:
        return read_cookie_file(path)
    except FileNotFoundError:
        return create_cookie_file(path)
