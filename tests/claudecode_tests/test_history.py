"""Stored-session history: path encoding, parentUuid chains, listings, real CLI transcripts."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from _proto_driver import open_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from claudecode._history import (
    MAX_DIR_NAME,
    History,
    SessionInfo,
    claude_config_dir,
    conversation,
    conversation_chain,
    decode_project_dir_name,
    encode_project_path,
    find_project_dir,
    find_session_path,
    list_projects,
    list_sessions,
    project_dir,
    read_file,
    read_session,
    summary,
)
from claudecode._messages import (
    AssistantMessage,
    ResultMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claudecode._options import Options
from claudecode._protocol_errors import InvalidSessionIdError, SessionNotFoundError
from claudecode.testing import FakeAnthropic, Text, ToolUse, Turn

SID = "11111111-2222-4333-8444-555555555555"
SID2 = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


# -- path encoding ------------------------------------------------------------------


def test_encode_simple_paths() -> None:
    assert encode_project_path("/home/me/my_project") == "-home-me-my-project"
    assert encode_project_path("/a/b-c.d e") == "-a-b-c-d-e"
    assert encode_project_path(Path("/x/Y9")) == "-x-Y9"
    # Every UTF-16 code unit becomes one dash: astral characters give two.
    assert encode_project_path("/é/😀") == "-----"


def test_encode_long_path_matches_the_real_cli() -> None:
    # Observed: the pinned CLI's directory for this working directory.
    path = "/tmp/exp/work/" + "a_very-long.dir name_" * 8 + "/" + "ü-émoji😀" * 3 + "/xxxxx"
    expected = "-tmp-exp-work" + "-a-very-long-dir-name" * 8 + "-----moji-----moji--ynt18b"
    assert encode_project_path(path) == expected
    assert len(expected) == MAX_DIR_NAME + 1 + len("ynt18b")


@given(st.text(max_size=400))
def test_encode_properties(path: str) -> None:
    name = encode_project_path(path)
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
    units = len(path.encode("utf-16-le")) // 2
    if units <= MAX_DIR_NAME:
        assert len(name) == units
    else:
        prefix, _, digest = name.rpartition("-")
        assert len(prefix) == MAX_DIR_NAME and 1 <= len(digest) <= 7
    assert encode_project_path(path) == name


def test_decode_is_a_display_guess() -> None:
    assert decode_project_dir_name("-home-me-proj") == "/home/me/proj"


# -- parentUuid chains ------------------------------------------------------------------


def entry(uuid: str, parent: str | None, kind: str = "user", **extra: Any) -> dict[str, Any]:
    message: Any = {"role": kind, "content": f"text {uuid}"}
    if kind == "assistant":
        message = {"role": "assistant", "content": [{"type": "text", "text": f"text {uuid}"}]}
    return {"type": kind, "uuid": uuid, "parentUuid": parent, "message": message, **extra}


def uuids(chain: list[dict[str, Any]]) -> list[str]:
    return [e["uuid"] for e in chain]


def test_linear_chain_with_metadata_interleaved() -> None:
    entries = [
        {"type": "queue-operation", "operation": "enqueue"},
        entry("a", None),
        entry("att", "a", "attachment"),
        entry("b", "att", "assistant"),
        {"type": "last-prompt", "lastPrompt": "x", "leafUuid": "b"},
        entry("c", "b"),
        entry("d", "c", "assistant"),
        entry("tail", "d", "attachment"),
    ]
    assert uuids(conversation_chain(entries)) == ["a", "att", "b", "c", "d"]


def test_fork_prefers_the_latest_branch() -> None:
    entries = [
        entry("a", None),
        entry("b", "a", "assistant"),
        entry("c", "b"),
        entry("d", "c", "assistant"),
        entry("e", "b"),  # rewound to b and asked again
        entry("f", "e", "assistant"),
    ]
    assert uuids(conversation_chain(entries)) == ["a", "b", "e", "f"]
    # The earlier branch wins when it is written later.
    assert uuids(conversation_chain([*entries, entry("g", "d")])) == ["a", "b", "c", "d", "g"]


def test_main_chain_beats_a_later_sidechain() -> None:
    entries = [
        entry("a", None),
        entry("b", "a", "assistant"),
        entry("s1", "b", isSidechain=True),
        entry("s2", "s1", "assistant", isSidechain=True),
        entry("m", "b", isMeta=True),
    ]
    # No main leaf exists, so the latest leaf is taken (conversation() then hides "m").
    assert uuids(conversation_chain(entries)) == ["a", "b", "m"]
    with_main = [*entries[:4], entry("c", "b"), entries[4]]
    assert uuids(conversation_chain(with_main)) == ["a", "b", "c"]
    only_side = [entry("s1", None, isSidechain=True), entry("s2", "s1", isSidechain=True)]
    assert uuids(conversation_chain(only_side)) == ["s1", "s2"]


def test_cycles_and_dangling_parents_terminate() -> None:
    cycle = [entry("a", "b"), entry("b", "a", "assistant")]
    assert conversation_chain(cycle) == []  # no terminal entry: nothing is a leaf
    loop_tail = [entry("a", "b"), entry("b", "a"), entry("c", "a", "assistant")]
    assert uuids(conversation_chain(loop_tail)) == ["b", "a", "c"]
    dangling = [entry("x", "missing"), entry("y", "x", "assistant")]
    assert uuids(conversation_chain(dangling)) == ["x", "y"]
    assert conversation_chain([]) == []
    assert conversation_chain([{"type": "summary", "summary": "s"}]) == []


@st.composite
def trees(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(1, 25))
    out: list[dict[str, Any]] = []
    for i in range(size):
        parent = None
        if out and draw(st.integers(0, 9)) > 0:
            parent = out[draw(st.integers(0, len(out) - 1))]["uuid"]
        kind = draw(st.sampled_from(["user", "assistant", "attachment", "system"]))
        extra = {"isSidechain": True} if draw(st.integers(0, 7)) == 0 else {}
        out.append(entry(f"n{i}", parent, kind, **extra))
    return out


def oracle_leaf(entries: list[dict[str, Any]]) -> str | None:
    """Top-down restatement of the leaf rule (independent of the implementation)."""
    children: dict[str, list[str]] = {}
    by_id = {e["uuid"]: e for e in entries}
    for e in entries:
        if e["parentUuid"] in by_id:
            children.setdefault(e["parentUuid"], []).append(e["uuid"])

    def reaches_terminal_without_message(node: str) -> bool:
        kids = children.get(node, [])
        if not kids:
            return True
        return any(
            by_id[k]["type"] not in ("user", "assistant") and reaches_terminal_without_message(k)
            for k in kids
        )

    messages = [e for e in entries if e["type"] in ("user", "assistant")]
    candidates = [e for e in messages if reaches_terminal_without_message(e["uuid"])]
    main = [e for e in candidates if not e.get("isSidechain")] or candidates
    return main[-1]["uuid"] if main else None


@settings(max_examples=300, deadline=None)
@given(trees())
def test_chain_properties(entries: list[dict[str, Any]]) -> None:
    chain = conversation_chain(entries)
    leaf = oracle_leaf(entries)
    if leaf is None:
        assert chain == []
        return
    assert chain[-1]["uuid"] == leaf
    assert chain[0]["parentUuid"] is None
    for parent, child in itertools.pairwise(chain):
        assert child["parentUuid"] == parent["uuid"]


# -- listing and reading synthetic transcripts ---------------------------------------------


def write(path: Path, entries: list[dict[str, Any] | str], mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [e if isinstance(e, str) else json.dumps(e) for e in entries]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def user(uuid: str, parent: str | None, content: Any, **extra: Any) -> dict[str, Any]:
    return {
        "type": "user",
        "uuid": uuid,
        "parentUuid": parent,
        "sessionId": SID,
        "cwd": "/real/project_dir",
        "gitBranch": "main",
        "message": {"role": "user", "content": content},
        **extra,
    }


def assistant(uuid: str, parent: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "assistant",
        "uuid": uuid,
        "parentUuid": parent,
        "sessionId": SID,
        "message": {
            "id": "msg_1",
            "role": "assistant",
            "model": "m",
            "content": [{"type": "text", "text": text}],
        },
        **extra,
    }


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "cfg"


def test_list_sessions_metadata_and_order(config: Path) -> None:
    proj = project_dir("/real/project_dir", config_dir=config)
    long_prompt = "word " * 100
    write(
        proj / f"{SID}.jsonl",
        [
            {"type": "queue-operation", "content": "ignored"},
            user("m", None, "<command-name>/init</command-name>", isMeta=True),
            user("c", None, "<command-name>/compact</command-name>"),
            user("t", "c", [{"type": "tool_result", "tool_use_id": "x", "content": "r"}]),
            user("i", "t", "[Request interrupted by user]"),
            user("u1", "i", [{"type": "text", "text": long_prompt}]),
            assistant("a1", "u1", "hi"),
            {"type": "last-prompt", "lastPrompt": "latest thing", "leafUuid": "a1"},
            "{broken line",
        ],
        mtime=1_000,
    )
    write(
        proj / f"{SID2}.jsonl",
        [
            user("x", None, "<command-name>/review</command-name>", gitBranch="dev"),
            {"type": "custom-title", "customTitle": "My title"},
        ],
        mtime=2_000,
    )
    write(proj / "not-a-uuid.jsonl", [user("z", None, "ignored")])
    write(
        proj / "33333333-2222-4333-8444-555555555555.jsonl",
        [user("s", None, "side", isSidechain=True)],
    )
    write(proj / "44444444-2222-4333-8444-555555555555.jsonl", [{"type": "summary"}])
    (proj / "55555555-2222-4333-8444-555555555555.jsonl").write_bytes(b"")
    (proj / "memory").mkdir()

    sessions = list_sessions("/real/project_dir", config_dir=config)
    assert [s.session_id for s in sessions] == [SID2, SID]
    newer, older = sessions
    assert newer.summary == "My title" and newer.custom_title == "My title"
    assert newer.first_prompt == "/review"  # command fallback
    assert newer.git_branch == "dev" and newer.last_modified == 2_000
    assert older.summary == "latest thing"
    assert older.first_prompt == long_prompt.strip()[:200].rstrip() + "\u2026"
    assert older.cwd == "/real/project_dir" and older.git_branch == "main"
    assert older.file_size == (proj / f"{SID}.jsonl").stat().st_size
    assert older.path == proj / f"{SID}.jsonl" and older.custom_title is None
    assert list_sessions("/real/project_dir", config_dir=config, limit=1) == [newer]
    assert list_sessions(config_dir=config) == sessions
    assert list_sessions("/elsewhere", config_dir=config) == []
    assert isinstance(newer, SessionInfo)


def test_list_projects_uses_recorded_cwd(config: Path) -> None:
    write(
        project_dir("/real/project_dir", config_dir=config) / f"{SID}.jsonl",
        [user("a", None, "hi")],
    )
    (config / "projects" / "-no-transcripts-here").mkdir(parents=True)
    assert list_projects(config_dir=config) == ["/no/transcripts/here", "/real/project_dir"]
    assert list_projects(config_dir=config / "missing") == []


def test_read_conversation_and_summary(config: Path) -> None:
    proj = project_dir("/p", config_dir=config)
    entries: list[dict[str, Any] | str] = [
        user("u1", None, "first"),
        assistant("a1", "u1", "one"),
        {
            "type": "assistant",
            "uuid": "a2",
            "parentUuid": "a1",
            "sessionId": SID,
            "message": {
                "id": "msg_1",
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}],
            },
        },
        user(
            "u2",
            "a2",
            [{"type": "tool_result", "tool_use_id": "t1", "content": "data"}],
            toolUseResult={"file": "x"},
        ),
        user("meta", "u2", "caveat", isMeta=True),
        assistant(
            "a3",
            "meta",
            "API Error",
            isApiErrorMessage=True,
            apiErrorStatus=529,
            error="server_error",
        ),
        {"type": "summary", "summary": "old summary", "leafUuid": "a1"},
        {"type": "summary", "summary": "new summary", "leafUuid": "a3"},
    ]
    path = write(proj / f"{SID}.jsonl", entries)
    assert read_session(SID, "/p", config_dir=config) == [e for e in entries if isinstance(e, dict)]
    assert read_file(path) == read_session(SID, config_dir=config)
    msgs = conversation(SID, config_dir=config)
    assert [type(m).__name__ for m in msgs] == [
        "UserMessage",
        "AssistantMessage",
        "AssistantMessage",
        "UserMessage",
        "AssistantMessage",
    ]
    first, one, use, result, error = msgs
    assert isinstance(first, UserMessage) and first.text == "first" and first.session_id == SID
    assert first.raw is not None and first.raw["uuid"] == "u1"  # the transcript entry
    assert isinstance(one, AssistantMessage) and one.content == [
        TextBlock("one", None, {"type": "text", "text": "one"})
    ]
    assert isinstance(use, AssistantMessage) and isinstance(use.content[0], ToolUseBlock)
    assert isinstance(result, UserMessage) and result.tool_use_result == {"file": "x"}
    assert isinstance(result.content[0], ToolResultBlock)
    assert isinstance(error, AssistantMessage)
    assert error.is_api_error_message and error.api_error_status == 529
    assert error.error == "server_error"
    assert summary(SID, config_dir=config) == "new summary"
    assert History.summary(SID, "/p", config_dir=config) == "new summary"
    assert History.get_messages(SID, config_dir=config) == msgs


def test_summary_fallbacks(config: Path) -> None:
    proj = project_dir("/q", config_dir=config)
    write(proj / f"{SID}.jsonl", [user("u", None, "just a prompt")])
    assert summary(SID, config_dir=config) == "just a prompt"
    write(
        proj / f"{SID}.jsonl", [user("u", None, "p"), {"type": "custom-title", "customTitle": "T"}]
    )
    assert summary(SID, config_dir=config) == "T"
    write(proj / f"{SID}.jsonl", [{"type": "queue-operation"}])
    assert summary(SID, config_dir=config) is None


def test_lookup_errors(config: Path) -> None:
    for bad in ("../../etc/passwd", "abc", "", 5):
        with pytest.raises(InvalidSessionIdError):
            find_session_path(bad, config_dir=config)  # type: ignore[arg-type]
    with pytest.raises(SessionNotFoundError) as info:
        read_session(SID, config_dir=config)
    assert info.value.session_id == SID and isinstance(info.value, LookupError)
    with pytest.raises(SessionNotFoundError):
        conversation(SID, "/nowhere", config_dir=config)


def test_config_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "env"))
    assert claude_config_dir() == tmp_path / "env"
    assert claude_config_dir(tmp_path / "explicit") == tmp_path / "explicit"
    write(project_dir("/r") / f"{SID}.jsonl", [user("u", None, "via env")])
    assert [s.first_prompt for s in list_sessions("/r")] == ["via env"]
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert claude_config_dir() == tmp_path / "home" / ".claude"


def test_long_project_dir_found_by_prefix(config: Path) -> None:
    """A CLI build that hashes long names differently is still found."""
    long_path = "/" + "x" * 300
    name = encode_project_path(long_path)
    other = config / "projects" / (name[:MAX_DIR_NAME] + "-otherhash")
    write(other / f"{SID}.jsonl", [user("u", None, "long")])
    assert find_project_dir(long_path, config_dir=config) == other
    assert find_session_path(SID, long_path, config_dir=config) == other / f"{SID}.jsonl"


def test_symlinked_project_path_resolves(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    config = tmp_path / "cfg"
    write(
        config / "projects" / encode_project_path(str(real)) / f"{SID}.jsonl",
        [user("u", None, "x")],
    )
    assert find_project_dir(link, config_dir=config) == config / "projects" / encode_project_path(
        str(real)
    )


# -- real CLI transcripts --------------------------------------------------------------------


async def test_real_cli_transcript_long_unicode_cwd_and_rewind() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        work = home / ("a_very-long.dir name_" * 8) / ("ü-émoji😀" * 3) / "proj"
        work.mkdir(parents=True)
        config = home / ".claude"
        async with FakeAnthropic.serve(seed=8) as fake:
            fake.script(
                Text("answer one"),
                Turn([Text("running"), ToolUse("Bash", {"command": "echo hi"})]),
                Text("answer two"),
                Text("answer three"),
            )
            options = Options(cwd=str(work), allowed_tools=["Bash"])
            async with open_cli(fake, options, home) as cli:
                for prompt in ("prompt one", "prompt two"):
                    await cli.send(cli.proto.user_message(prompt))
                    result = await cli.next_event(lambda e: isinstance(e, ResultMessage))
            assert isinstance(result, ResultMessage) and result.session_id
            sid = result.session_id

            # The directory the CLI made is exactly the one we compute.
            made = [p.name for p in (config / "projects").iterdir()]
            assert made == [encode_project_path(str(work))]
            assert len(made[0]) > MAX_DIR_NAME
            assert find_project_dir(work, config_dir=config) == config / "projects" / made[0]
            assert list_projects(config_dir=config) == [str(work)]

            msgs = conversation(sid, work, config_dir=config)
            shape = [
                (type(m).__name__, m.text if isinstance(m, (UserMessage, AssistantMessage)) else "")
                for m in msgs
            ]
            assert shape == [
                ("UserMessage", "prompt one"),
                ("AssistantMessage", "answer one"),
                ("UserMessage", "prompt two"),
                ("AssistantMessage", "running"),
                ("AssistantMessage", ""),
                ("UserMessage", ""),
                ("AssistantMessage", "answer two"),
            ]
            tool_use = msgs[4]
            tool_result = msgs[5]
            assert isinstance(tool_use, AssistantMessage) and tool_use.tool_uses[0].name == "Bash"
            assert isinstance(tool_result, UserMessage)
            assert tool_result.tool_results[0].tool_use_id == tool_use.tool_uses[0].id
            assert all(m.session_id == sid for m in msgs)  # type: ignore[attr-defined]

            (info,) = list_sessions(work, config_dir=config)
            assert info.session_id == sid and info.first_prompt == "prompt one"
            assert info.summary == "prompt two" and info.cwd == str(work)
            assert len(read_session(sid, config_dir=config)) == len(
                (config / "projects" / made[0] / f"{sid}.jsonl").read_bytes().splitlines()
            )

            # Resume at the first answer: the CLI appends a branch to the same file.
            first_answer = msgs[1].uuid  # type: ignore[attr-defined]
            resumed = Options(cwd=str(work), resume=sid, resume_session_at=first_answer)
            async with open_cli(fake, resumed, home) as cli:
                await cli.send(cli.proto.user_message("prompt three"))
                again = await cli.next_event(lambda e: isinstance(e, ResultMessage))
            assert isinstance(again, ResultMessage) and again.session_id == sid
        texts = [m.text for m in conversation(sid, config_dir=config)]  # type: ignore[attr-defined]
        assert texts == ["prompt one", "answer one", "prompt three", "answer three"]
        assert summary(sid, config_dir=config) == "prompt three"
