"""Drive the real Claude Code CLI line by line, for tests and recordings.

:class:`RawCLI` starts ``claude --output-format stream-json --verbose
--input-format stream-json`` against a :class:`~claudecode.testing.FakeAnthropic`
with a private temporary ``HOME``, writes JSON lines to its stdin and reads
its stdout lines (kept both raw and parsed). It is deliberately thin — no
session logic, no message types — so tests can see exactly what the CLI does.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from claudecode._install import resolve_cli
from claudecode.testing._server import FakeAnthropic

BASE_ARGS = ("--output-format", "stream-json", "--verbose", "--input-format", "stream-json")
"""Flags every :class:`RawCLI` passes before the caller's own."""

LinePredicate = Callable[[dict[str, Any]], bool]


class CLIExited(Exception):
    """The CLI's stdout ended while a line was still awaited.

    Attributes:
        returncode: the exit status, if the process has exited.
        stderr: the tail of the CLI's stderr.
    """

    def __init__(self, what: str, returncode: int | None, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{what}: CLI stdout closed (exit {returncode}); stderr tail: {stderr!r}")


class RawCLI:
    """A running CLI process with line-level access. Create it with :meth:`open`.

    Attributes:
        process: the trio process.
        home: the temporary ``HOME`` (and ``CLAUDE_CONFIG_DIR`` parent) it runs with.
        raw_lines: every stdout line, as bytes without the newline.
        lines: every stdout line parsed as JSON (a line that is not a JSON
            object is kept as ``{"type": "_unparsed", "raw": "<text>"}``).
    """

    def __init__(self, process: trio.Process, home: Path) -> None:
        self.process = process
        self.home = home
        self.raw_lines: list[bytes] = []
        self.lines: list[dict[str, Any]] = []
        self._stderr = bytearray()
        self._cursor = 0
        self._eof = False
        self._changed = trio.Condition()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        fake: FakeAnthropic,
        *,
        args: Sequence[str] = (),
        cwd: str | os.PathLike[str] | None = None,
        cli_path: str | None = None,
        env: Mapping[str, str] | None = None,
        max_retries: int | None = None,
    ) -> AsyncIterator[RawCLI]:
        """Start the CLI; on exit close its stdin, wait briefly, then kill it.

        Args:
            fake: the fake API the CLI talks to (its :meth:`FakeAnthropic.env` is applied).
            args: extra CLI flags after the stream-json ones.
            cwd: the CLI's working directory (default: the temporary home).
            cli_path: the executable; :func:`claudecode._install.resolve_cli` when ``None``.
            env: extra environment entries (applied last).
            max_retries: passed to :meth:`FakeAnthropic.env`.

        Yields:
            The running :class:`RawCLI`.
        """
        executable = resolve_cli(cli_path)
        with tempfile.TemporaryDirectory(prefix="claudecode-home-") as tmp:
            home = Path(tmp)
            full_env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(home),
                "CLAUDE_CONFIG_DIR": str(home / ".claude"),
                "LANG": "C.UTF-8",
                **fake.env(max_retries=max_retries),
                **(env or {}),
            }
            process = await trio.lowlevel.open_process(
                [executable, *BASE_ARGS, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                cwd=str(cwd if cwd is not None else home),
            )
            cli = cls(process, home)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cli._read_stdout)
                    nursery.start_soon(cli._read_stderr)
                    try:
                        yield cli
                    finally:
                        with trio.CancelScope(shield=True):
                            await cli._shutdown()
                        nursery.cancel_scope.cancel()
            finally:
                if process.returncode is None:  # pragma: no cover - defensive
                    process.kill()

    # -- output ----------------------------------------------------------

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        try:
            async for chunk in self.process.stdout:
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                if complete:
                    async with self._changed:
                        for raw in complete:
                            if raw.strip():
                                self._add_line(raw)
                        self._changed.notify_all()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        finally:
            with trio.CancelScope(shield=True):
                async with self._changed:
                    if buffer.strip():
                        self._add_line(buffer)
                    self._eof = True
                    self._changed.notify_all()

    def _add_line(self, raw: bytes) -> None:
        self.raw_lines.append(raw)
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            parsed = {"type": "_unparsed", "raw": raw.decode("utf-8", "replace")}
        self.lines.append(parsed)

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        try:
            async for chunk in self.process.stderr:
                self._stderr += chunk
                del self._stderr[:-65536]
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    @property
    def stderr(self) -> str:
        """The last 64 KiB of the CLI's stderr."""
        return self._stderr.decode("utf-8", "replace")

    async def next_line(self, timeout: float = 30.0) -> dict[str, Any]:
        """Return the next unread stdout line.

        Args:
            timeout: seconds to wait.

        Returns:
            The parsed line.

        Raises:
            CLIExited: stdout ended first.
            trio.TooSlowError: nothing arrived in time.
        """
        with trio.fail_after(timeout):
            async with self._changed:
                while self._cursor >= len(self.lines):
                    if self._eof:
                        raise CLIExited("waiting for a line", self.process.returncode, self.stderr)
                    await self._changed.wait()
                line = self.lines[self._cursor]
                self._cursor += 1
                return line

    async def read_until(
        self, predicate: LinePredicate, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Read lines up to and including the first one matching ``predicate``.

        Args:
            predicate: test on a parsed line.
            timeout: seconds to wait in total.

        Returns:
            The lines read, the matching one last.
        """
        read: list[dict[str, Any]] = []
        with trio.fail_after(timeout):
            while True:
                line = await self.next_line(math.inf)
                read.append(line)
                if predicate(line):
                    return read

    async def until_result(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Read lines up to and including the next ``result`` line.

        Args:
            timeout: seconds to wait.

        Returns:
            The lines of the turn, the ``result`` last.
        """
        return await self.read_until(lambda line: line.get("type") == "result", timeout)

    # -- input -----------------------------------------------------------

    async def send(self, obj: Mapping[str, Any]) -> None:
        """Write one JSON line to the CLI's stdin.

        Args:
            obj: the message.
        """
        assert self.process.stdin is not None
        await self.process.stdin.send_all(json.dumps(obj).encode() + b"\n")

    async def send_user(self, content: str | list[Any], **extra: Any) -> None:
        """Send a user message (``{"type": "user", "message": {...}}``).

        Args:
            content: the prompt text or content blocks.
            **extra: more top-level fields (e.g. ``uuid``).
        """
        await self.send(
            {
                "type": "user",
                "message": {"role": "user", "content": content},
                "parent_tool_use_id": None,
                "session_id": "default",
                **extra,
            }
        )

    async def send_control(self, request_id: str, subtype: str, **fields: Any) -> None:
        """Send a control request (e.g. ``subtype="interrupt"``).

        Args:
            request_id: id the response will carry.
            subtype: the request's subtype.
            **fields: other fields of the request.
        """
        await self.send(
            {
                "type": "control_request",
                "request_id": request_id,
                "request": {"subtype": subtype, **fields},
            }
        )

    async def close_stdin(self) -> None:
        """Close stdin (the CLI then finishes and exits)."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    async def wait(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit.

        Args:
            timeout: seconds to wait.

        Returns:
            The exit status.
        """
        with trio.fail_after(timeout):
            return await self.process.wait()

    async def _shutdown(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            with contextlib.suppress(trio.BrokenResourceError):
                await self.process.stdin.aclose()
            with trio.move_on_after(5):
                await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        # Let the readers drain what is left, then stop them.
        with trio.move_on_after(2):
            async with self._changed:
                while not self._eof:
                    await self._changed.wait()
