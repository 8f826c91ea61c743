"""Regenerate the CLI stdout recordings in this directory.

Run: ``/work/.venv/bin/python tests/claudecode_tests/recordings/record.py``

Each scenario runs the real pinned Claude Code CLI against FakeAnthropic and
writes the CLI's stdout, byte for byte, one JSON object per line, to
``<scenario>.jsonl``. The inputs of each scenario are listed in README.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from claudecode._install import install_cli
from claudecode.testing import (
    APIError,
    FakeAnthropic,
    RawCLI,
    RecordedRequest,
    Text,
    Thinking,
    ToolUse,
    Turn,
)

HERE = Path(__file__).resolve().parent
Scenario = Callable[[str], Awaitable[list[bytes]]]


async def plain_text(cli: str) -> list[bytes]:
    async with FakeAnthropic.serve(seed=1) as fake:
        fake.script(Text("Hello! This reply came from FakeAnthropic."))
        async with RawCLI.open(fake, cli_path=cli) as proc:
            await proc.send_user("Say hello")
            await proc.until_result()
            await proc.close_stdin()
            await proc.wait()
            return proc.raw_lines


async def two_turns(cli: str) -> list[bytes]:
    async with FakeAnthropic.serve(seed=2) as fake, RawCLI.open(fake, cli_path=cli) as proc:
        await proc.send_user("first question")
        await proc.until_result()
        await proc.send_user("second question")
        await proc.until_result()
        await proc.close_stdin()
        await proc.wait()
        return proc.raw_lines


async def partial_messages(cli: str) -> list[bytes]:
    async with FakeAnthropic.serve(seed=3) as fake:
        fake.script(
            Turn([Thinking("Let me think about it.", chunks=3), Text("Streaming text.", chunks=4)])
        )
        args = ["--include-partial-messages"]
        async with RawCLI.open(fake, cli_path=cli, args=args) as proc:
            await proc.send_user("Think, then answer")
            await proc.until_result()
            await proc.close_stdin()
            await proc.wait()
            return proc.raw_lines


async def tool_use_read(cli: str) -> list[bytes]:
    with tempfile.TemporaryDirectory(prefix="claudecode-rec-") as tmp:
        target = Path(tmp) / "notes.txt"
        target.write_text("alpha line\nbeta line\n")

        def summarise(request: RecordedRequest) -> Text:
            return Text(f"The file has {len(request.tool_result_text().splitlines())} lines.")

        async with FakeAnthropic.serve(seed=4) as fake:
            fake.script(ToolUse("Read", {"file_path": str(target)}, chunks=3), summarise)
            async with RawCLI.open(fake, cli_path=cli, cwd=tmp) as proc:
                await proc.send_user("What is in notes.txt?")
                await proc.until_result()
                await proc.close_stdin()
                await proc.wait()
                return proc.raw_lines


async def tool_use_bash_partial(cli: str) -> list[bytes]:
    async with FakeAnthropic.serve(seed=5) as fake:
        fake.script(
            Turn(
                [
                    Text("Running it.", chunks=2),
                    ToolUse("Bash", {"command": "echo hi", "description": "Say hi"}, chunks=2),
                ]
            ),
            Text("It printed hi."),
        )
        args = ["--include-partial-messages", "--allowedTools", "Bash"]
        async with RawCLI.open(fake, cli_path=cli, args=args) as proc:
            await proc.send_user("Run echo hi")
            await proc.until_result()
            await proc.close_stdin()
            await proc.wait()
            return proc.raw_lines


async def api_error_529(cli: str) -> list[bytes]:
    async with (
        FakeAnthropic.serve(seed=6, default=APIError(529)) as fake,
        RawCLI.open(fake, cli_path=cli, max_retries=0) as proc,
    ):
        await proc.send_user("This fails")
        await proc.until_result()
        await proc.close_stdin()
        await proc.wait()
        return proc.raw_lines


async def api_retry_then_success(cli: str) -> list[bytes]:
    async with FakeAnthropic.serve(seed=7) as fake:
        fake.script(APIError(529), Text("Worked on the second try."))
        async with RawCLI.open(fake, cli_path=cli) as proc:
            await proc.send_user("Retry me")
            await proc.until_result()
            await proc.close_stdin()
            await proc.wait()
            return proc.raw_lines


async def interrupt(cli: str) -> list[bytes]:
    async with FakeAnthropic.serve(seed=8) as fake:
        fake.script(Turn([Text("one two three four five six", chunks=20)], chunk_delay=0.2))
        args = ["--include-partial-messages"]
        async with RawCLI.open(fake, cli_path=cli, args=args) as proc:
            await proc.send_user("Count slowly")
            await proc.read_until(
                lambda line: (
                    line.get("type") == "stream_event"
                    and line["event"]["type"] == "content_block_delta"
                )
            )
            await proc.send_control("req_interrupt_1", "interrupt")
            await proc.until_result()
            await proc.send_user("Still there?")
            await proc.until_result()
            await proc.close_stdin()
            await proc.wait()
            return proc.raw_lines


async def initialize(cli: str) -> list[bytes]:
    async with FakeAnthropic.serve(seed=9) as fake, RawCLI.open(fake, cli_path=cli) as proc:
        await proc.send_control("req_init_1", "initialize")
        await proc.read_until(lambda line: line.get("type") == "control_response")
        await proc.send_control("req_bogus_2", "no_such_subtype")
        await proc.read_until(lambda line: line.get("type") == "control_response")
        await proc.send_user("hi")
        await proc.until_result()
        await proc.close_stdin()
        await proc.wait()
        return proc.raw_lines


async def background_task(cli: str) -> list[bytes]:
    async with FakeAnthropic.serve(seed=10) as fake:
        fake.script(
            ToolUse("Bash", {"command": "sleep 1; echo done", "run_in_background": True,
                             "description": "Wait a second"}),
            Text("Started it."),
            Text("The job finished."),  # the turn the CLI starts by itself
        )
        args = ["--allowedTools", "Bash"]
        async with RawCLI.open(fake, cli_path=cli, args=args) as proc:
            await proc.send_user("Start a job", uuid="11111111-1111-4111-8111-111111111111")
            await proc.until_result()
            await proc.until_result()  # the CLI's own turn, after the task notification
            await proc.close_stdin()
            await proc.wait()
            return proc.raw_lines


async def hooks_and_compact(cli: str) -> list[bytes]:
    settings = json.dumps({"hooks": {"PreToolUse": [
        {"matcher": "Bash", "hooks": [{"type": "command", "command": "echo checked"}]}]}})
    async with FakeAnthropic.serve(seed=11) as fake:
        fake.script(ToolUse("Bash", {"command": "echo hi", "description": "Say hi"}),
                    Text("Done."))
        args = ["--allowedTools", "Bash", "--include-hook-events", f"--settings={settings}",
                "--setting-sources="]
        async with RawCLI.open(fake, cli_path=cli, args=args) as proc:
            await proc.send_user("Run echo hi")
            await proc.until_result()
            await proc.send_user("/compact")
            await proc.until_result()
            await proc.close_stdin()
            await proc.wait()
            return proc.raw_lines


SCENARIOS: dict[str, Scenario] = {
    "plain_text": plain_text,
    "two_turns": two_turns,
    "partial_messages": partial_messages,
    "tool_use_read": tool_use_read,
    "tool_use_bash_partial": tool_use_bash_partial,
    "api_error_529": api_error_529,
    "api_retry_then_success": api_retry_then_success,
    "interrupt": interrupt,
    "initialize": initialize,
    "background_task": background_task,
    "hooks_and_compact": hooks_and_compact,
}


async def main(names: list[str]) -> None:
    cli = install_cli().path
    for name in names or list(SCENARIOS):
        lines = await SCENARIOS[name](cli)
        (HERE / f"{name}.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
        print(f"{name}: {len(lines)} lines")


if __name__ == "__main__":
    trio.run(main, sys.argv[1:])
