"""In-process MCP tools: the model calls Python functions of this program.

Run it with ``python examples/mcp_tools.py``. It defines two tools on an
in-process MCP server named ``calc``:

* ``add(a, b)`` adds two integers and records the sum in a ``Tally``
  GenServer with ``otpy.call`` (tools run in their own otpy process, so they
  may call other servers);
* ``stats()`` asks the tally for its numbers and returns them as a dict,
  which reaches the model as JSON text.

The model is scripted with ``claudecode.testing.FakeAnthropic``, a fake
Messages API on 127.0.0.1 that the real Claude Code CLI talks to, so this
runs offline in a few seconds (it needs the pinned CLI: ``claudecode
install-cli``). The scripted model calls ``add`` correctly, then with a bad
argument (the tool is not called; the model gets a ``Tool error: ...``
result), then ``stats``, and finally answers with what it got back. The
program prints each call, each result as the stream shows it (first line
only: the CLI may append a hint of its own, shown as ``[...]``), and what the
model's next request really carried.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import claudecode
import otpy
from claudecode.testing import FakeAnthropic, RecordedRequest, Text, ToolUse

# -- a GenServer the tools talk to ------------------------------------------------


class Tally(otpy.GenServer):
    """Counts the additions and their total."""

    async def init(self) -> None:
        self.calls = 0
        self.total = 0

    async def handle_call(self, request: Any, caller: Any) -> Any:
        match request:
            case ("record", int(value)):
                self.calls += 1
                self.total += value
                return None
            case "stats":
                return {"calls": self.calls, "total": self.total}
        raise ValueError(f"unknown request {request!r}")


# -- the tools ----------------------------------------------------------------------

TOOL_PROCESSES: list[otpy.Pid] = []
"""The otpy process each tool call ran in (filled by the tools)."""


@claudecode.tool("add", "Add two integers and return the sum", {"a": int, "b": int})
async def add(args: dict[str, Any]) -> str:
    """Add ``a`` and ``b`` (validated integers) and record the sum."""
    TOOL_PROCESSES.append(otpy.self())
    total = args["a"] + args["b"]
    await otpy.call("tally", ("record", total))
    return str(total)


@claudecode.tool("stats", "How many additions were made, and their total")
async def stats(args: dict[str, Any]) -> dict[str, int]:
    """The tally's numbers (a dict: sent to the model as JSON text)."""
    TOOL_PROCESSES.append(otpy.self())
    result: dict[str, int] = await otpy.call("tally", "stats")
    return result


CALC = claudecode.mcp_server("calc", tools=[add, stats])


# -- the scripted model -----------------------------------------------------------


def final_answer(request: RecordedRequest) -> Text:
    """The model's last reply, built from the ``stats`` result its request carries."""
    numbers = json.loads(request.tool_result_text("toolu_stats"))
    return Text(f"Made {numbers['calls']} addition, total {numbers['total']}; "
                "'two' is not a number.")


def script(fake: FakeAnthropic) -> None:
    """Queue the model's four replies: three tool calls, then the answer."""
    fake.script(
        ToolUse("mcp__calc__add", {"a": 2, "b": 3}, id="toolu_add"),
        ToolUse("mcp__calc__add", {"a": "two", "b": 3}, id="toolu_bad"),
        ToolUse("mcp__calc__stats", {}, id="toolu_stats"),
        final_answer,
    )


# -- the program ------------------------------------------------------------------


def first_line(text: str) -> str:
    """The first line of a text, with " [...]" when more lines follow."""
    head, _, rest = text.partition("\n")
    return f"{head} [...]" if rest.strip() else head


def result_text(block: claudecode.ToolResultBlock) -> str:
    """The text of a tool result as the stream shows it."""
    if isinstance(block.content, str):
        return block.content
    if block.content is None:
        return ""
    return "".join(b.text for b in block.content if isinstance(b, claudecode.TextBlock))


async def main() -> None:
    await Tally.start(name="tally")
    async with FakeAnthropic.serve(log_requests=False) as fake:
        script(fake)
        print(f"FakeAnthropic at {fake.base_url}: the real Claude Code CLI talks to it, offline")
        with tempfile.TemporaryDirectory(prefix="mcp-tools-") as home:
            env = {"HOME": home, "CLAUDE_CONFIG_DIR": os.path.join(home, ".claude"),
                   **fake.env(max_retries=0)}
            session = await claudecode.start_link(
                env=env,
                cwd=home,
                mcp_servers={"calc": CALC},
                allowed_tools=["mcp__calc"],  # every tool of the calc server, no prompt
            )
            async for message in claudecode.stream(session, "Add 2 and 3.", timeout=60):
                if isinstance(message, claudecode.SystemMessage) and message.subtype == "init":
                    mine = [t for t in message.tools or [] if t.startswith("mcp__calc__")]
                    print(f"tools the model can call: {', '.join(mine)}")
                elif isinstance(message, claudecode.AssistantMessage):
                    for use in message.tool_uses:
                        print(f"[model]  calls {use.name} {use.input}")
                    if message.text:
                        print(f"[model]  {message.text}")
                elif isinstance(message, claudecode.UserMessage):
                    for block in message.tool_results:
                        flag = "(error) " if block.is_error else ""
                        print(f"[result] {flag}{first_line(result_text(block))}")
            await claudecode.stop(session)

        print("what the model's next requests carried:")
        for request, tool_id in zip(
            fake.messages_requests[1:], ("toolu_add", "toolu_bad", "toolu_stats"), strict=False
        ):
            print(f"  {tool_id}: {first_line(request.tool_result_text(tool_id))}")
        print(f"the tools ran in their own processes: {TOOL_PROCESSES} "
              f"(the session was {session}, this program is {otpy.self()})")


if __name__ == "__main__":
    otpy.run(main)
