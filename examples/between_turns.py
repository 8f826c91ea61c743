"""Background tasks, the CLI's own turns, and prompts that arrive one by one.

Run it with ``python examples/between_turns.py`` (offline: the model is a
scripted ``claudecode.testing.FakeAnthropic``; the real pinned CLI runs).

1. The model starts a ``Bash`` command in the background and ends its turn.
   The stream ends there, with its own result.
2. A subscription (``claudecode.subscribe``) sees what happens next, outside
   any query: the task finishes, and the CLI starts a turn of its own to tell
   the model (its result's ``origin`` says ``task-notification``).
3. A prompt given as an async iterable sends its messages as they come; the
   stream holds every answer and ends after the last.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator

import trio

import claudecode
import otpy
from claudecode.testing import FakeAnthropic, RecordedRequest, Text, ToolUse


def reply(request: RecordedRequest) -> Text:
    """The scripted model: it answers the CLI's own turn, and echoes the rest."""
    if "completed" in str(request.messages[-1:]):
        return Text("The background job is done.")
    return Text(f"You said: {request.last_user_text}")


async def prompts() -> AsyncIterator[str]:
    yield "first thought"
    await trio.sleep(0.5)
    yield "second thought"


async def main() -> None:
    async with FakeAnthropic.serve(log_requests=False) as fake:
        fake.script(ToolUse("Bash", {"command": "sleep 1", "run_in_background": True,
                                     "description": "Wait a second"}),
                    Text("Started the job."))
        fake.default = reply
        with tempfile.TemporaryDirectory() as home:
            session = await claudecode.start_link(
                allowed_tools=["Bash"], cwd=home,
                env={"HOME": home, "CLAUDE_CONFIG_DIR": os.path.join(home, ".claude"),
                     **fake.env(max_retries=0)})
            async with claudecode.subscribe(session, timeout=30) as events:
                async for message in claudecode.stream(session, "Start the job"):
                    if isinstance(message, claudecode.TaskStartedMessage):
                        print("task started:", message.description)
                    elif isinstance(message, claudecode.ResultMessage):
                        print("query answered:", message.result)

                async for message in events:
                    if isinstance(message, claudecode.TaskNotificationMessage):
                        print("task", message.status + ":", message.summary)
                    elif isinstance(message, claudecode.ResultMessage):
                        assert message.origin is not None
                        print(f"the CLI's own turn ({message.origin['kind']}):", message.result)
                        break

            stream = claudecode.stream(session, prompts())
            async for result in stream.filter_type(claudecode.ResultMessage):
                print("streamed prompt answered:", result.result)
            await claudecode.stop(session)


if __name__ == "__main__":
    otpy.run(main)
