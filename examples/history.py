"""Stored sessions: run a conversation, then read it back from the CLI's files.

Run it with ``python examples/history.py``. The Claude Code CLI writes every
session to ``<config dir>/projects/<encoded cwd>/<session id>.jsonl``; this
program points the CLI's config dir (``CLAUDE_CONFIG_DIR``) at a temporary
directory, so nothing under ``~/.claude`` is read or written, and then:

1. runs a two-turn session in a temporary working directory;
2. reads it back with ``claudecode.History``: ``list_projects``,
   ``list_sessions``, ``find_session_path``, ``read_session``,
   ``conversation`` and ``summary``;
3. resumes the session at its first answer and asks something else. The CLI
   appends this new branch to the same file; ``conversation`` follows the
   newest branch, while ``read_session`` still has every entry.

The model is scripted with ``claudecode.testing.FakeAnthropic`` (a fake
Messages API on 127.0.0.1 that the real CLI talks to), so this runs offline
in a few seconds; it needs the pinned CLI (``claudecode install-cli``).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import claudecode
import otpy
from claudecode import History
from claudecode.testing import FakeAnthropic, Text

ANSWERS = {
    "What is the capital of France?": "Paris.",
    "And its population?": "About 2.1 million people live in Paris proper.",
    "What about Germany?": "Berlin is the capital of Germany.",
}


def show(messages: list[claudecode.Message]) -> None:
    """Print a stored conversation, one line per message."""
    for message in messages:
        if isinstance(message, claudecode.UserMessage | claudecode.AssistantMessage):
            role = "user" if isinstance(message, claudecode.UserMessage) else "assistant"
            print(f"     {role:<10} {message.text}")


async def ask(session: otpy.Pid, prompt: str) -> None:
    """One turn, printed as prompt and answer."""
    answer = await claudecode.stream(session, prompt, timeout=60).final_text()
    print(f"   > {prompt}")
    print(f"   < {answer}")


async def main() -> None:
    async with FakeAnthropic.serve(log_requests=False) as fake:
        fake.default = lambda request: Text(ANSWERS.get(request.last_user_text, "I don't know."))
        with tempfile.TemporaryDirectory(prefix="history-") as tmp:
            root = Path(tmp).resolve()
            config = root / "claude-config"  # the CLI's config dir: transcripts go here
            work = root / "my project"  # the session's working directory
            work.mkdir()
            options: dict[str, Any] = {
                "cwd": str(work),
                "env": {"HOME": str(root), "CLAUDE_CONFIG_DIR": str(config),
                        **fake.env(max_retries=0)},
            }

            print("1. A session with two turns")
            session = await claudecode.start_link(**options)
            await ask(session, "What is the capital of France?")
            await ask(session, "And its population?")
            sid = await claudecode.get_session_id(session)
            assert sid is not None
            await claudecode.stop(session)

            print("\n2. Reading it back with claudecode.History")
            path = History.find_session_path(sid, config_dir=config)
            print(f"   transcript: {path.relative_to(config).parent}/<session id>.jsonl")
            print(f"   the directory name encodes the cwd: "
                  f"{History.encode_project_path(work) == path.parent.name}")
            projects = History.list_projects(config_dir=config)
            print(f"   list_projects: {[str(Path(p).relative_to(root)) for p in projects]}")
            [info] = History.list_sessions(work, config_dir=config)
            print(f"   list_sessions: same id: {info.session_id == sid}, "
                  f"first_prompt={info.first_prompt!r}, summary={info.summary!r}, "
                  f"cwd is the project: {info.cwd == str(work)}, file_size > 0: "
                  f"{info.file_size > 0}")
            entries = History.read_session(sid, config_dir=config)
            kinds = Counter(str(e.get("type")) for e in entries)
            print(f"   read_session: {len(entries)} entries, "
                  f"{kinds['user']} user and {kinds['assistant']} assistant among them")
            print("   conversation:")
            messages = History.conversation(sid, work, config_dir=config)
            show(messages)
            print(f"   summary: {History.summary(sid, config_dir=config)!r}")

            print("\n3. Resume at the first answer and take another branch")
            first_answer = messages[1].raw["uuid"]
            resumed = await claudecode.start_link(
                resume=sid, resume_session_at=first_answer, **options
            )
            await ask(resumed, "What about Germany?")
            same = await claudecode.get_session_id(resumed) == sid
            await claudecode.stop(resumed)
            print(f"   same session id: {same}")
            print("   conversation (the newest branch):")
            show(History.conversation(sid, config_dir=config))
            everything = History.read_session(sid, config_dir=config)
            old_branch = any("And its population?" in str(e.get("message")) for e in everything)
            print(f"   the old branch is still in the file: {old_branch}")
            print(f"   summary: {History.summary(sid, config_dir=config)!r}")
            gone = "00000000-0000-4000-8000-000000000000"
            try:
                History.read_session(gone, config_dir=config)
            except LookupError as err:
                print(f"   an unknown id raises {type(err).__name__}")


if __name__ == "__main__":
    otpy.run(main)
