"""The real Claude Code CLI (pinned version) against FakeAnthropic.

Each test starts the fake, runs the real CLI in stream-json mode with a
temporary HOME, and checks both what the CLI printed and what the fake saw.
The CLI is installed on first use (idempotent; a no-op when present).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from claudecode._install import PINNED_CLI_VERSION, cli_version, install_cli
from claudecode.testing import (
    APIError,
    Echo,
    FakeAnthropic,
    RawCLI,
    RecordedRequest,
    Text,
    Thinking,
    ToolUse,
    Turn,
)

Line = dict[str, Any]


@pytest.fixture(scope="module")
def cli() -> str:
    """The pinned CLI's path (installed into the user cache if missing)."""
    path = install_cli().path
    assert cli_version(path) == PINNED_CLI_VERSION
    return path


def _of_type(lines: list[Line], kind: str) -> list[Line]:
    return [line for line in lines if line.get("type") == kind]


def _texts(lines: list[Line]) -> list[str]:
    return [
        block["text"]
        for line in _of_type(lines, "assistant")
        for block in line["message"]["content"]
        if block.get("type") == "text"
    ]


def _tool_results(lines: list[Line]) -> list[dict[str, Any]]:
    return [
        block
        for line in _of_type(lines, "user")
        for block in line["message"]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


async def test_scripted_text_reaches_the_cli_and_the_fake_records_it(cli: str) -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(Text("Hello from the fake API"))
        async with RawCLI.open(fake, cli_path=cli) as proc:
            await proc.send_user("Say hello")
            lines = await proc.until_result()
    assert lines[0]["type"] == "system" and lines[0]["subtype"] == "init"
    assert _texts(lines) == ["Hello from the fake API"]
    result = lines[-1]
    assert result["is_error"] is False
    assert result["result"] == "Hello from the fake API"
    assert result["session_id"] == lines[0]["session_id"]

    [request] = fake.messages_requests
    assert request.path == "/v1/messages" and request.query == {"beta": "true"}
    assert request.headers["x-api-key"] == fake.api_key
    assert request.headers["user-agent"].startswith(f"claude-cli/{PINNED_CLI_VERSION}")
    assert request.stream is True
    assert request.last_user_text == "Say hello"
    assert "Read" in request.tool_names
    # The whole conversation went to the fake and nowhere else.
    assert all(r.is_messages for r in fake.requests)


async def test_echo_count_grows_across_turns_in_one_process(cli: str) -> None:
    async with FakeAnthropic.serve() as fake, RawCLI.open(fake, cli_path=cli) as proc:
        await proc.send_user("first question")
        first = await proc.until_result()
        await proc.send_user("second question")
        second = await proc.until_result()
    # 2 = the prompt + the CLI's own system/environment entry; +2 per later turn.
    assert first[-1]["result"] == "echo #2: first question"
    assert second[-1]["result"] == "echo #4: second question"
    assert first[-1]["session_id"] == second[-1]["session_id"]
    roles = [m["role"] for m in fake.messages_requests[1].messages]
    assert roles == ["user", "system", "assistant", "user"]


async def test_scripted_read_returns_the_real_file_contents(cli: str, tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("alpha line\nbeta line\n")

    def summarise(request: RecordedRequest) -> Text:
        return Text(f"The file says: {request.tool_result_text()}")

    async with FakeAnthropic.serve() as fake:
        fake.script(ToolUse("Read", {"file_path": str(target)}, id="toolu_read_1"), summarise)
        async with RawCLI.open(fake, cli_path=cli, cwd=tmp_path) as proc:
            await proc.send_user("What is in notes.txt?")
            lines = await proc.until_result()

    tool_uses = [
        block
        for line in _of_type(lines, "assistant")
        for block in line["message"]["content"]
        if block["type"] == "tool_use"
    ]
    assert tool_uses == [
        {
            "type": "tool_use",
            "id": "toolu_read_1",
            "name": "Read",
            "input": {"file_path": str(target)},
        }
    ]
    [result_block] = _tool_results(lines)
    assert result_block["tool_use_id"] == "toolu_read_1"
    assert "alpha line" in result_block["content"] and "beta line" in result_block["content"]
    assert not result_block.get("is_error")
    # The tool result went back to the fake, and the reply function used it.
    second = fake.messages_requests[1]
    assert "beta line" in second.tool_result_text("toolu_read_1")
    assert lines[-1]["result"].startswith("The file says: ")
    assert "alpha line" in lines[-1]["result"]


async def test_scripted_write_and_bash_run_for_real(cli: str, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    async with FakeAnthropic.serve() as fake:
        fake.script(
            Turn(
                [
                    ToolUse("Write", {"file_path": str(out), "content": "written by the CLI\n"}),
                    ToolUse("Bash", {"command": "echo bash-ran-$((40+2))", "description": "echo"}),
                ]
            ),
            Text("done"),
        )
        args = ["--permission-mode", "acceptEdits", "--allowedTools", "Bash"]
        async with RawCLI.open(fake, cli_path=cli, cwd=tmp_path, args=args) as proc:
            await proc.send_user("write and run")
            lines = await proc.until_result()
    assert out.read_text() == "written by the CLI\n"
    contents = [str(block["content"]) for block in _tool_results(lines)]
    assert any("bash-ran-42" in c for c in contents)
    assert lines[-1]["result"] == "done"
    assert len(fake.messages_requests[1].tool_results) == 2


async def test_unknown_mcp_tool_use_gives_an_error_tool_result(cli: str) -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(ToolUse("mcp__calc__add", {"a": 1, "b": 2}), Text("gave up"))
        async with RawCLI.open(fake, cli_path=cli) as proc:
            await proc.send_user("add")
            lines = await proc.until_result()
    [block] = _tool_results(lines)
    assert block["is_error"] is True
    assert lines[-1]["result"] == "gave up"


async def test_partial_messages_stream_every_delta(cli: str) -> None:
    text = "streaming in several pieces"
    async with FakeAnthropic.serve() as fake:
        fake.script(Turn([Thinking("pondering", chunks=2), Text(text, chunks=4)]))
        args = ["--include-partial-messages"]
        async with RawCLI.open(fake, cli_path=cli, args=args) as proc:
            await proc.send_user("stream please")
            lines = await proc.until_result()
    deltas = [
        line["event"]["delta"]
        for line in _of_type(lines, "stream_event")
        if line["event"]["type"] == "content_block_delta"
    ]
    text_deltas = [d["text"] for d in deltas if d["type"] == "text_delta"]
    thinking_deltas = [d["thinking"] for d in deltas if d["type"] == "thinking_delta"]
    assert len(text_deltas) == 4 and "".join(text_deltas) == text
    assert "".join(thinking_deltas) == "pondering"
    thinking = [
        block
        for line in _of_type(lines, "assistant")
        for block in line["message"]["content"]
        if block["type"] == "thinking"
    ]
    assert thinking[0]["thinking"] == "pondering"
    assert lines[-1]["result"] == text


@pytest.mark.parametrize("status", [529, 400])
async def test_api_error_gives_an_error_result(cli: str, status: int) -> None:
    # Sticky: a 400 makes the CLI retry several times, dropping optional betas each time.
    error = APIError(status, message=f"failure {status}")
    async with (
        FakeAnthropic.serve(default=error) as fake,
        RawCLI.open(fake, cli_path=cli, max_retries=0) as proc,
    ):
        await proc.send_user("this will fail")
        lines = await proc.until_result()
        await proc.close_stdin()
        code = await proc.wait()
    [synthetic] = _of_type(lines, "assistant")
    assert synthetic["is_api_error_message"] is True
    assert synthetic["api_error_status"] == status
    assert synthetic["message"]["model"] == "<synthetic>"
    result = lines[-1]
    assert result["is_error"] is True
    assert result["terminal_reason"] == "api_error"
    assert result["api_error_status"] == status
    assert str(status) in result["result"]
    assert len(fake.messages_requests) >= 1  # 2.1.328: 1 for a 529, 6 for a 400
    assert code == 1  # stdin EOF after an error result


async def test_overloaded_is_retried_then_succeeds(cli: str) -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(APIError(529))
        async with RawCLI.open(fake, cli_path=cli) as proc:
            await proc.send_user("try again")
            lines = await proc.until_result()
    [retry] = [line for line in lines if line.get("subtype") == "api_retry"]
    assert retry["error_status"] == 529 and retry["attempt"] == 1
    assert lines[-1]["is_error"] is False
    assert lines[-1]["result"] == "echo #2: try again"
    assert len(fake.messages_requests) == 2


async def test_mid_stream_disconnect_falls_back_to_a_non_streaming_request(cli: str) -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(Turn([Text("cut off half way", chunks=4)], disconnect_after=4))
        async with RawCLI.open(fake, cli_path=cli, max_retries=0) as proc:
            await proc.send_user("disconnect")
            lines = await proc.until_result()
    first, second = fake.messages_requests
    assert first.stream is True and second.stream is False
    assert lines[-1]["result"] == "echo #2: disconnect"


async def test_interrupt_aborts_a_slow_stream_and_the_session_goes_on(cli: str) -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(Turn([Text("one two three four five six", chunks=20)], chunk_delay=0.2))
        args = ["--include-partial-messages"]
        async with RawCLI.open(fake, cli_path=cli, args=args) as proc:
            await proc.send_user("count slowly")
            await proc.read_until(
                lambda line: (
                    line.get("type") == "stream_event"
                    and line["event"]["type"] == "content_block_delta"
                )
            )
            await proc.send_control("req_interrupt_1", "interrupt")
            lines = await proc.until_result(timeout=10)
            await proc.send_user("still there?")
            after = await proc.until_result()
    [response] = _of_type(lines, "control_response")
    assert response["response"]["request_id"] == "req_interrupt_1"
    assert response["response"]["subtype"] == "success"
    assert any(line.get("aborted") for line in _of_type(lines, "assistant"))
    assert lines[-1]["is_error"] is True
    assert lines[-1]["terminal_reason"] == "aborted_streaming"
    assert after[-1]["result"].startswith("echo #")
    assert after[-1]["result"].endswith("still there?")


async def test_reply_function_scripts_a_conversation(cli: str) -> None:
    def by_prompt(request: RecordedRequest) -> Text | APIError:
        if "capital" in request.last_user_text:
            return Text("Paris")
        return Text(f"no idea ({len(request.messages)} messages)")

    async with (
        FakeAnthropic.serve(default=by_prompt) as fake,
        RawCLI.open(fake, cli_path=cli) as proc,
    ):
        await proc.send_user("capital of France?")
        first = await proc.until_result()
        await proc.send_user("meaning of life?")
        second = await proc.until_result()
    assert first[-1]["result"] == "Paris"
    assert second[-1]["result"] == "no idea (4 messages)"


async def test_latency_before_the_answer_is_observable(cli: str) -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(Echo(delay=0.8))
        async with RawCLI.open(fake, cli_path=cli) as proc:
            await proc.send_user("slow")
            started = trio.current_time()
            lines = await proc.until_result()
            elapsed = trio.current_time() - started
    assert 0.8 <= elapsed < 10
    assert lines[-1]["result"] == "echo #2: slow"
