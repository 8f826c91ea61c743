"""Read the session transcripts the Claude Code CLI stores on disk.

The CLI appends every session to
``<config dir>/projects/<encoded cwd>/<session id>.jsonl`` where the config
dir is ``$CLAUDE_CONFIG_DIR`` or ``~/.claude`` (every function here also takes
``config_dir=`` explicitly). The directory name encodes the working directory
exactly as the pinned CLI does (checked against it): every UTF-16 code unit
that is not an ASCII letter or digit becomes ``-``; a result longer than 200
characters is cut to 200 and gets ``-<hash>`` appended, the hash being the
JavaScript 31-multiplier string hash of the path (over UTF-16 code units, as a
signed 32-bit integer, absolute value, base 36). Lookups of long paths also
fall back to a prefix scan, in case a CLI build hashes differently.

Each line of a transcript is one JSON entry: ``user`` / ``assistant`` (one
entry per content block), ``attachment``, ``system``, ``summary``,
``custom-title``, ``last-prompt``, ``queue-operation``... The conversation is
the ``parentUuid`` chain: :func:`conversation` picks the newest leaf of the
main chain (not a sidechain, meta or team entry) and walks back to the root,
so abandoned branches (rewinds, resumes at an earlier message) are left out.

Editing follows claude-agent-sdk's conventions, so the CLI and that SDK see
the same thing: :func:`rename_session` and :func:`tag_session` append a
``custom-title`` / ``tag`` entry (the newest wins), :func:`delete_session`
removes the transcript and its subagent directory, :func:`fork_session`
copies the chain with fresh uuids into a new session. Subagent transcripts
(:func:`list_subagents`, :func:`subagent_messages`) live in
``<project>/<session id>/subagents/agent-<id>.jsonl``.

Everything here is plain synchronous file reading: transcripts are small and
local, and the callers (tools, tests, the session's ``get_messages``) are
happy to run it directly or in ``trio.to_thread.run_sync``. Unreadable lines
(e.g. a line cut short by a crash) are skipped, never fatal.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import unicodedata
import uuid as uuid_mod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final, cast

import attrs

from claudecode._messages import Message, json_loads, parse_message
from claudecode._protocol_errors import InvalidSessionIdError, SessionNotFoundError

__all__ = [
    "ForkResult",
    "History",
    "SessionInfo",
    "claude_config_dir",
    "conversation",
    "conversation_chain",
    "decode_project_dir_name",
    "delete_session",
    "encode_project_path",
    "find_project_dir",
    "find_session_path",
    "fork_session",
    "from_terms",
    "list_projects",
    "list_sessions",
    "list_subagents",
    "project_dir",
    "projects_dir",
    "read_file",
    "read_session",
    "rename_session",
    "session_info",
    "subagent_info",
    "subagent_messages",
    "summary",
    "tag_session",
]

MAX_DIR_NAME: Final = 200
"""Longest encoded project directory name before truncation + hash."""

LITE_READ_SIZE: Final = 64 * 1024
"""Bytes read from the head and the tail of a transcript for :func:`list_sessions`."""

_UUID_RE: Final = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_CHAIN_TYPES: Final = frozenset({"user", "assistant", "attachment", "system", "progress"})
_SKIP_PROMPT_RE: Final = re.compile(
    r"^(?:<local-command-stdout>|<session-start-hook>|<tick>|<goal>|"
    r"\[Request interrupted by user[^\]]*\]|"
    r"\s*<ide_opened_file>[\s\S]*</ide_opened_file>\s*$|"
    r"\s*<ide_selection>[\s\S]*</ide_selection>\s*$)"
)
_COMMAND_NAME_RE: Final = re.compile(r"<command-name>(.*?)</command-name>")
_DIGITS36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------


def claude_config_dir(config_dir: str | os.PathLike[str] | None = None) -> Path:
    """The CLI's config directory.

    Args:
        config_dir: explicit directory; wins over the environment.

    Returns:
        ``config_dir``, else ``$CLAUDE_CONFIG_DIR``, else ``~/.claude``.
    """
    if config_dir is not None:
        return Path(config_dir)
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    if env:
        return Path(env)
    return Path.home() / ".claude"


def projects_dir(config_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<config dir>/projects``.

    Args:
        config_dir: see :func:`claude_config_dir`.

    Returns:
        The directory holding one sub-directory per project.
    """
    return claude_config_dir(config_dir) / "projects"


def _utf16_units(text: str) -> Iterator[int]:
    """The UTF-16 code units of ``text`` (what JavaScript string functions see)."""
    for ch in text:
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            yield 0xD800 + (code >> 10)
            yield 0xDC00 + (code & 0x3FF)
        else:
            yield code


def _js_hash36(text: str) -> str:
    """The CLI's directory-name hash: JS ``(h << 5) - h + c`` over UTF-16 units, base 36."""
    h = 0
    for unit in _utf16_units(text):
        h = ((h << 5) - h + unit) & 0xFFFFFFFF
    if h >= 0x80000000:
        h -= 0x100000000
    h = abs(h)
    if h == 0:
        return "0"
    digits = []
    while h:
        h, rem = divmod(h, 36)
        digits.append(_DIGITS36[rem])
    return "".join(reversed(digits))


def _is_alnum_unit(unit: int) -> bool:
    return 48 <= unit <= 57 or 65 <= unit <= 90 or 97 <= unit <= 122


def encode_project_path(path: str | os.PathLike[str]) -> str:
    """The CLI's directory name for a working directory (the path is used as given).

    Args:
        path: the working directory, as the CLI saw it (absolute, symlinks resolved).

    Returns:
        The encoded name, e.g. ``"-home-me-my-project"``.
    """
    text = os.fspath(path)
    encoded = "".join(chr(u) if _is_alnum_unit(u) else "-" for u in _utf16_units(text))
    if len(encoded) <= MAX_DIR_NAME:
        return encoded
    return f"{encoded[:MAX_DIR_NAME]}-{_js_hash36(text)}"


def decode_project_dir_name(name: str) -> str:
    """A display guess of the path behind a directory name (``-`` -> ``/``; lossy).

    Args:
        name: an encoded directory name.

    Returns:
        The guessed path. Prefer :func:`list_projects`, which reads the real
        ``cwd`` from the transcripts.
    """
    return name.replace("-", "/")


def _candidates(project_path: str | os.PathLike[str]) -> list[str]:
    raw = os.fspath(project_path)
    out = []
    for candidate in (
        os.path.realpath(raw),
        os.path.abspath(raw),
        unicodedata.normalize("NFC", os.path.realpath(raw)),
        unicodedata.normalize("NFD", os.path.realpath(raw)),
    ):
        if candidate not in out:
            out.append(candidate)
    return out


def project_dir(
    project_path: str | os.PathLike[str], *, config_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Where the CLI stores transcripts for ``project_path`` (whether or not it exists).

    Args:
        project_path: the working directory (made absolute, symlinks resolved).
        config_dir: see :func:`claude_config_dir`.

    Returns:
        ``<projects dir>/<encoded path>``.
    """
    return projects_dir(config_dir) / encode_project_path(_candidates(project_path)[0])


def find_project_dir(
    project_path: str | os.PathLike[str], *, config_dir: str | os.PathLike[str] | None = None
) -> Path | None:
    """The existing transcript directory of ``project_path``, if any.

    Tries the resolved path, the path as given and its Unicode normal forms;
    for long (hashed) names, also any directory with the same 200-character
    prefix.

    Args:
        project_path: the working directory.
        config_dir: see :func:`claude_config_dir`.

    Returns:
        The directory, or ``None``.
    """
    root = projects_dir(config_dir)
    names = [encode_project_path(c) for c in _candidates(project_path)]
    for name in names:
        if (root / name).is_dir():
            return root / name
    prefixes = {name[:MAX_DIR_NAME] + "-" for name in names if len(name) > MAX_DIR_NAME}
    if prefixes:
        try:
            for entry in sorted(root.iterdir()):
                if entry.is_dir() and entry.name.startswith(tuple(prefixes)):
                    return entry
        except OSError:
            return None
    return None


def _check_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not _UUID_RE.match(session_id):
        raise InvalidSessionIdError(session_id)
    return session_id


def _project_dirs(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return []


def find_session_path(
    session_id: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """The transcript file of a session.

    Args:
        session_id: the session's UUID.
        project_path: its working directory, to look only there (faster); all
            projects are searched when ``None``.
        config_dir: see :func:`claude_config_dir`.

    Returns:
        The ``.jsonl`` path.

    Raises:
        InvalidSessionIdError: ``session_id`` is not a UUID.
        SessionNotFoundError: no such transcript.
    """
    sid = _check_session_id(session_id)
    root = projects_dir(config_dir)
    if project_path is not None:
        directory = find_project_dir(project_path, config_dir=config_dir)
        dirs = [directory] if directory is not None else []
        where = str(project_dir(project_path, config_dir=config_dir))
    else:
        dirs = _project_dirs(root)
        where = str(root)
    for directory in dirs:
        path = directory / f"{sid}.jsonl"
        if path.is_file():
            return path
    raise SessionNotFoundError(sid, where)


# ---------------------------------------------------------------------------
# Reading entries
# ---------------------------------------------------------------------------


def _iter_entries(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            entry = json_loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(entry, dict):
            yield entry


def read_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All entries of a transcript file, in file order.

    Args:
        path: a ``.jsonl`` transcript.

    Returns:
        One dict per line that is a JSON object (other lines are skipped).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        return list(_iter_entries(f.read()))


def read_session(
    session_id: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Every entry of a session's transcript (messages, attachments, metadata...).

    Args:
        session_id: the session's UUID.
        project_path: its working directory, or ``None`` to search all projects.
        config_dir: see :func:`claude_config_dir`.

    Returns:
        The raw entries, in file order.

    Raises:
        InvalidSessionIdError: not a UUID.
        SessionNotFoundError: no such transcript.
    """
    return read_file(find_session_path(session_id, project_path, config_dir=config_dir))


def _is_main(entry: dict[str, Any]) -> bool:
    return (
        entry.get("isSidechain") is not True
        and entry.get("isMeta") is not True
        and entry.get("teamName") is None
    )


def conversation_chain(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The current conversation path through a transcript's ``parentUuid`` tree.

    Leaves are chain entries that no other entry names as parent; each is
    walked back to its nearest ``user``/``assistant`` entry. Among those, main
    chain ones (not sidechain / meta / team) are preferred and the one latest
    in the file wins. The path from that leaf back to the root is returned
    root first. Cycles and dangling parents end the walk (never loop).

    Args:
        entries: transcript entries in file order.

    Returns:
        The chain entries (all types that carry ``uuid``/``parentUuid``), root first.
    """
    chain_entries: list[dict[str, Any]] = []
    for entry in entries:
        if entry.get("type") in _CHAIN_TYPES and isinstance(entry.get("uuid"), str):
            chain_entries.append(entry)
    if not chain_entries:
        return []
    by_uuid: dict[str, dict[str, Any]] = {}
    position: dict[str, int] = {}
    for index, entry in enumerate(chain_entries):
        by_uuid[entry["uuid"]] = entry
        position[entry["uuid"]] = index
    parents = {e.get("parentUuid") for e in chain_entries if isinstance(e.get("parentUuid"), str)}

    leaves: list[dict[str, Any]] = []
    for entry in chain_entries:
        if entry["uuid"] in parents:
            continue
        node: dict[str, Any] | None = entry
        seen: set[str] = set()
        while node is not None and node["uuid"] not in seen:
            seen.add(node["uuid"])
            if node.get("type") in ("user", "assistant"):
                leaves.append(node)
                break
            parent = node.get("parentUuid")
            node = by_uuid.get(parent) if isinstance(parent, str) else None
    if not leaves:
        return []
    main = [leaf for leaf in leaves if _is_main(leaf)] or leaves
    leaf = max(main, key=lambda e: position[e["uuid"]])

    path: list[dict[str, Any]] = []
    seen = set()
    node = leaf
    while node is not None and node["uuid"] not in seen:
        seen.add(node["uuid"])
        path.append(node)
        parent = node.get("parentUuid")
        node = by_uuid.get(parent) if isinstance(parent, str) else None
    path.reverse()
    return path


def _entry_message(entry: dict[str, Any]) -> Message:
    """Parse a transcript entry with the live-stream parser (camelCase keys mapped)."""
    view = dict(entry)
    view.setdefault("session_id", entry.get("sessionId"))
    view.setdefault("tool_use_result", entry.get("toolUseResult"))
    if entry.get("isApiErrorMessage") is True:
        view.setdefault("is_api_error_message", True)
    if "apiErrorStatus" in entry:
        view.setdefault("api_error_status", entry.get("apiErrorStatus"))
    message = parse_message(view)
    cast(Any, message).raw = entry  # keep the transcript entry itself
    return message


def _session_dir(
    session_id: str,
    project_path: str | os.PathLike[str] | None,
    config_dir: str | os.PathLike[str] | None,
) -> Path:
    """``<project dir>/<session id>/``: where the CLI keeps a session's subagent transcripts."""
    path = find_session_path(session_id, project_path, config_dir=config_dir)
    return path.with_suffix("")


def _agent_files(session_id: str, project_path: str | os.PathLike[str] | None,
                 config_dir: str | os.PathLike[str] | None) -> list[tuple[str, Path]]:
    base = _session_dir(session_id, project_path, config_dir) / "subagents"
    found: list[tuple[str, Path]] = []

    def walk(directory: Path) -> None:
        try:
            entries = sorted(directory.iterdir(), key=lambda p: p.name)
        except OSError:
            return
        for entry in entries:
            name = entry.name
            if entry.is_dir():
                walk(entry)  # workflows/<run id>/agent-*.jsonl
            elif name.startswith("agent-") and name.endswith(".jsonl"):
                found.append((name[len("agent-"):-len(".jsonl")], entry))

    walk(base)
    return found


def list_subagents(
    session_id: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> list[str]:
    """The ids of the subagents (``Task`` / ``Agent`` tool) a stored session ran.

    Their transcripts are ``<project>/<session id>/subagents/agent-<id>.jsonl``
    (possibly in sub-directories), as the CLI writes them.

    Args:
        session_id: the parent session's UUID.
        project_path: its working directory, or ``None`` to search all projects.
        config_dir: see :func:`claude_config_dir`.

    Returns:
        The agent ids, sorted by file name.

    Raises:
        InvalidSessionIdError: not a UUID.
        SessionNotFoundError: no such session.
    """
    return [agent for agent, _ in _agent_files(session_id, project_path, config_dir)]


def subagent_info(
    session_id: str,
    agent_id: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """What the CLI recorded about one subagent (its ``agent-<id>.meta.json``).

    Args:
        session_id: the parent session's UUID.
        agent_id: the subagent's id (from :func:`list_subagents`).
        project_path: the working directory, or ``None`` to search all projects.
        config_dir: see :func:`claude_config_dir`.

    Returns:
        The metadata (``agentType``, ``description``, ``toolUseId``...);
        ``{}`` when the CLI left none.

    Raises:
        SessionNotFoundError: no such session or subagent.
    """
    path = _agent_path(session_id, agent_id, project_path, config_dir)
    meta = path.with_name(path.name[:-len(".jsonl")] + ".meta.json")
    try:
        value = json_loads(meta.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _agent_path(session_id: str, agent_id: str, project_path: str | os.PathLike[str] | None,
                config_dir: str | os.PathLike[str] | None) -> Path:
    for agent, path in _agent_files(session_id, project_path, config_dir):
        if agent == agent_id:
            return path
    raise SessionNotFoundError(f"{session_id}/agent-{agent_id}",
                               str(_session_dir(session_id, project_path, config_dir)))


def subagent_messages(
    session_id: str,
    agent_id: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> list[Message]:
    """A subagent's conversation, as typed messages, oldest first.

    The subagent's transcript is linear: its last ``user``/``assistant``
    entry is walked back to the root. Each message's ``parent_tool_use_id``
    is the ``Task`` tool call that spawned the subagent (from the CLI's
    metadata), so it reads like the subagent messages of a live stream.

    Args:
        session_id: the parent session's UUID.
        agent_id: the subagent's id (from :func:`list_subagents`).
        project_path: its working directory, or ``None`` to search all projects.
        config_dir: see :func:`claude_config_dir`.

    Returns:
        ``UserMessage`` / ``AssistantMessage`` objects (``raw`` is the entry).

    Raises:
        InvalidSessionIdError: not a UUID.
        SessionNotFoundError: no such session or subagent.
    """
    path = _agent_path(session_id, agent_id, project_path, config_dir)
    entries = [e for e in read_file(path)
               if e.get("type") in _CHAIN_TYPES and isinstance(e.get("uuid"), str)]
    by_uuid = {e["uuid"]: e for e in entries}
    leaf = next((e for e in reversed(entries) if e.get("type") in ("user", "assistant")), None)
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    node = leaf
    while node is not None and node["uuid"] not in seen:
        seen.add(node["uuid"])
        chain.append(node)
        parent = node.get("parentUuid")
        node = by_uuid.get(parent) if isinstance(parent, str) else None
    chain.reverse()
    meta = subagent_info(session_id, agent_id, project_path, config_dir=config_dir)
    spawner = meta.get("toolUseId")
    out = []
    for entry in chain:
        if entry.get("type") not in ("user", "assistant"):
            continue
        view = dict(entry)
        if isinstance(spawner, str):
            view.setdefault("parent_tool_use_id", spawner)
        message = _entry_message(view)
        cast(Any, message).raw = entry
        out.append(message)
    return out


def conversation(
    session_id: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> list[Message]:
    """The visible conversation of a stored session, as typed messages, oldest first.

    Follows :func:`conversation_chain` and keeps the ``user`` and ``assistant``
    entries that are not meta, sidechain or team entries. As in the live
    stream, an assistant reply of several blocks is several
    :class:`~claudecode._messages.AssistantMessage` s with the same
    ``message_id``. Each message's ``raw`` is the transcript entry.

    Args:
        session_id: the session's UUID.
        project_path: its working directory, or ``None`` to search all projects.
        config_dir: see :func:`claude_config_dir`.

    Returns:
        ``UserMessage`` / ``AssistantMessage`` objects.

    Raises:
        InvalidSessionIdError: not a UUID.
        SessionNotFoundError: no such transcript.
    """
    entries = read_session(session_id, project_path, config_dir=config_dir)
    return [
        _entry_message(e)
        for e in conversation_chain(entries)
        if e.get("type") in ("user", "assistant") and _is_main(e)
    ]


# ---------------------------------------------------------------------------
# Session metadata
# ---------------------------------------------------------------------------


@attrs.frozen
class SessionInfo:
    """What :func:`list_sessions` knows about one stored session.

    Attributes:
        session_id: the session's UUID.
        summary: a one-line description: the custom (or AI) title, else the
            last prompt, else the compaction summary, else the first prompt.
        last_modified: the file's modification time (epoch seconds).
        file_size: the file's size in bytes.
        custom_title: the user-set (or AI-generated) title, if any.
        first_prompt: the first real user prompt (truncated to 200 chars).
        git_branch: the git branch recorded, if any.
        cwd: the working directory recorded in the transcript.
        path: the transcript file.
        tag: the tag set with :func:`claudecode.History.tag_session`, if any.
        created_at: when the session began (epoch milliseconds), from the
            first timestamp in the transcript.
    """

    session_id: str
    summary: str
    last_modified: float
    file_size: int
    custom_title: str | None
    first_prompt: str | None
    git_branch: str | None
    cwd: str | None
    path: Path
    tag: str | None = None
    created_at: int | None = None


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    try:
        value = json_loads('"' + raw + '"')
    except (ValueError, RecursionError):
        return raw
    return value if isinstance(value, str) else raw


def _string_fields(text: str, key: str) -> Iterator[str]:
    """Values of ``"key":"..."`` in possibly truncated JSON text, in order."""
    for pattern in (f'"{key}":"', f'"{key}": "'):
        start = 0
        while True:
            index = text.find(pattern, start)
            if index < 0:
                break
            i = index + len(pattern)
            n = len(text)
            while i < n:
                ch = text[i]
                if ch == "\\":
                    i += 2
                    continue
                if ch == '"':
                    yield _unescape(text[index + len(pattern) : i])
                    break
                i += 1
            start = i + 1


def _first_field(text: str, key: str) -> str | None:
    best: tuple[int, str] | None = None
    for pattern in (f'"{key}":"', f'"{key}": "'):
        index = text.find(pattern)
        if index >= 0 and (best is None or index < best[0]):
            values = list(_string_fields(text[index:], key))
            if values:
                best = (index, values[0])
    return best[1] if best else None


def _last_field(text: str, key: str) -> str | None:
    value = None
    last_index = -1
    for pattern in (f'"{key}":"', f'"{key}": "'):
        index = text.rfind(pattern)
        if index > last_index:
            values = list(_string_fields(text[index:], key))
            if values:
                value, last_index = values[0], index
    return value


def _prompt_text(text: str) -> tuple[str | None, str | None]:
    """``(prompt, command)``: a usable prompt, or the slash command it names."""
    result = text.replace("\n", " ").strip()
    if not result:
        return None, None
    match = _COMMAND_NAME_RE.search(result)
    if match:
        return None, match.group(1)
    if _SKIP_PROMPT_RE.match(result):
        return None, None
    if len(result) > 200:
        result = result[:200].rstrip() + "\u2026"
    return result, None


def _first_prompt(head: str) -> str | None:
    command: str | None = None
    for line in head.split("\n"):
        if '"user"' not in line or '"tool_result"' in line:
            continue
        try:
            entry = json_loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(entry, dict) or entry.get("type") != "user" or not _is_main(entry):
            continue
        if entry.get("isCompactSummary") is True:
            continue
        message = entry.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        texts: list[str] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                b["text"]
                for b in content
                if isinstance(b, dict)
                and b.get("type") == "text"
                and isinstance(b.get("text"), str)
            )
        for text in texts:
            prompt, cmd = _prompt_text(text)
            if prompt is not None:
                return prompt
            if cmd is not None and command is None:
                command = cmd
    return command


def _read_head_tail(path: Path) -> tuple[str, str, os.stat_result] | None:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            head = f.read(LITE_READ_SIZE)
            if not head:
                return None
            if st.st_size > LITE_READ_SIZE:
                f.seek(max(0, st.st_size - LITE_READ_SIZE))
                tail = f.read(LITE_READ_SIZE)
            else:
                tail = head
    except OSError:
        return None
    return head.decode("utf-8", "replace"), tail.decode("utf-8", "replace"), st


def _session_info(path: Path, session_id: str) -> SessionInfo | None:
    lite = _read_head_tail(path)
    if lite is None:
        return None
    head, tail, st = lite
    first_line = head.split("\n", 1)[0]
    if '"isSidechain":true' in first_line or '"isSidechain": true' in first_line:
        return None
    custom_title = (
        _last_field(tail, "customTitle")
        or _last_field(head, "customTitle")
        or _last_field(tail, "aiTitle")
        or _last_field(head, "aiTitle")
    )
    first_prompt = _first_prompt(head)
    text = (
        custom_title
        or _last_field(tail, "lastPrompt")
        or _last_field(tail, "summary")
        or first_prompt
    )
    if not text:
        return None
    return SessionInfo(
        session_id=session_id,
        summary=text,
        last_modified=st.st_mtime,
        file_size=st.st_size,
        custom_title=custom_title or None,
        first_prompt=first_prompt,
        git_branch=_last_field(tail, "gitBranch") or _first_field(head, "gitBranch"),
        cwd=_first_field(head, "cwd"),
        path=path,
        tag=_last_tag(tail),
        created_at=_epoch_ms(_first_field(head, "timestamp")),
    )


def _last_tag(tail: str) -> str | None:
    """The newest ``{"type":"tag"...}`` entry's tag (``""`` clears it), from the tail.

    Only whole tag lines are read, so a ``"tag"`` key inside a tool input
    (``git tag``...) is never taken for one.
    """
    for line in reversed(tail.split("\n")):
        if line.startswith('{"type":"tag"'):
            return _last_field(line, "tag") or None
    return None


def _epoch_ms(stamp: str | None) -> int | None:
    if not stamp:
        return None
    try:
        moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


def session_info(
    session_id: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> SessionInfo | None:
    """What :func:`list_sessions` would say about one stored session.

    Args:
        session_id: the session's UUID.
        project_path: its working directory, or ``None`` to search all projects.
        config_dir: see :func:`claude_config_dir`.

    Returns:
        The record, or ``None`` for a subagent or metadata-only transcript.

    Raises:
        InvalidSessionIdError: not a UUID.
        SessionNotFoundError: no such transcript.
    """
    path = find_session_path(session_id, project_path, config_dir=config_dir)
    return _session_info(path, session_id)


def _sessions_in(directory: Path) -> list[SessionInfo]:
    out = []
    try:
        files = list(directory.iterdir())
    except OSError:
        return []
    for path in files:
        name = path.name
        if not name.endswith(".jsonl") or not _UUID_RE.match(name[:-6]) or not path.is_file():
            continue
        info = _session_info(path, name[:-6])
        if info is not None:
            out.append(info)
    return out


def list_sessions(
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> list[SessionInfo]:
    """Stored sessions with metadata, newest first.

    Only the first and last 64 KiB of each transcript are read. Sidechain
    (subagent) transcripts and transcripts without any prompt are left out.

    Args:
        project_path: a working directory; ``None`` lists every project.
        config_dir: see :func:`claude_config_dir`.
        limit: keep at most this many (after sorting).

    Returns:
        :class:`SessionInfo` records sorted by ``last_modified``, newest first.
    """
    if project_path is not None:
        directory = find_project_dir(project_path, config_dir=config_dir)
        dirs = [directory] if directory is not None else []
    else:
        dirs = _project_dirs(projects_dir(config_dir))
    by_id: dict[str, SessionInfo] = {}
    for directory in dirs:
        for info in _sessions_in(directory):
            known = by_id.get(info.session_id)
            if known is None or info.last_modified > known.last_modified:
                by_id[info.session_id] = info
    sessions = sorted(by_id.values(), key=lambda s: (s.last_modified, s.session_id), reverse=True)
    return sessions if limit is None else sessions[: max(0, limit)]


def list_projects(*, config_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Working directories that have stored sessions, sorted.

    The real path is read from the ``cwd`` recorded in a transcript of each
    project directory; the lossy name decoding is only the fallback.

    Args:
        config_dir: see :func:`claude_config_dir`.

    Returns:
        The project paths.
    """
    out: set[str] = set()
    for directory in _project_dirs(projects_dir(config_dir)):
        cwd = None
        try:
            files = sorted(p for p in directory.iterdir() if p.name.endswith(".jsonl"))
        except OSError:
            files = []
        for path in files:
            lite = _read_head_tail(path)
            if lite is not None:
                cwd = _first_field(lite[0], "cwd")
                if cwd:
                    break
        out.add(cwd or decode_project_dir_name(directory.name))
    return sorted(out)


def summary(
    session_id: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> str | None:
    """A one-line description of a stored session.

    The newest compaction ``summary`` entry if there is one, else the custom
    (or AI) title, else the last prompt, else the first prompt.

    Args:
        session_id: the session's UUID.
        project_path: its working directory, or ``None`` to search all projects.
        config_dir: see :func:`claude_config_dir`.

    Returns:
        The text, or ``None`` for a session without any of these.

    Raises:
        InvalidSessionIdError: not a UUID.
        SessionNotFoundError: no such transcript.
    """
    entries = read_session(session_id, project_path, config_dir=config_dir)

    def last(kind: str, key: str) -> str | None:
        for entry in reversed(entries):
            value = entry.get(key)
            if entry.get("type") == kind and isinstance(value, str) and value:
                return value
        return None

    found = (
        last("summary", "summary")
        or last("custom-title", "customTitle")
        or last("ai-title", "aiTitle")
        or last("last-prompt", "lastPrompt")
    )
    if found:
        return found
    for entry in entries:
        if entry.get("type") == "user" and _is_main(entry):
            message = entry.get("message")
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                prompt, _ = _prompt_text(content)
                if prompt:
                    return prompt
    return None


# ---------------------------------------------------------------------------
# Editing stored sessions (claude-agent-sdk's on-disk conventions)
# ---------------------------------------------------------------------------

_STRIP_RE: Final = re.compile("[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\ue000-\uf8ff]")
_FORK_TYPES: Final = frozenset({"user", "assistant", "attachment", "system", "progress"})


def _clean_text(value: str) -> str:
    """NFKC, without format / private-use / unassigned characters (as the CLI filters tags)."""
    current = value
    for _ in range(10):
        previous = current
        current = unicodedata.normalize("NFKC", current)
        current = "".join(c for c in current
                          if unicodedata.category(c) not in ("Cf", "Co", "Cn"))
        current = _STRIP_RE.sub("", current)
        if current == previous:
            break
    return current


def _append_entry(session_id: str, entry: dict[str, Any],
                  project_path: str | os.PathLike[str] | None,
                  config_dir: str | os.PathLike[str] | None) -> Path:
    """Append one JSON line to an existing, non-empty transcript (never creates one)."""
    path = find_session_path(session_id, project_path, config_dir=config_dir)
    line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)  # no O_CREAT: a vanished file fails
    except FileNotFoundError:
        raise SessionNotFoundError(session_id, str(path.parent)) from None
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return path


def rename_session(
    session_id: str,
    title: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Give a stored session a title (a ``custom-title`` entry; the newest wins).

    :func:`list_sessions` shows it as ``custom_title`` and ``summary``; the
    CLI shows it in its session list.

    Args:
        session_id: the session's UUID.
        title: the title (surrounding whitespace is removed; must not be empty).
        project_path: its working directory, or ``None`` to search all projects.
        config_dir: see :func:`claude_config_dir`.

    Raises:
        ValueError: the title is empty.
        InvalidSessionIdError / SessionNotFoundError: as for :func:`find_session_path`.
    """
    stripped = title.strip() if isinstance(title, str) else ""
    if not stripped:
        raise ValueError("a session title must be a non-empty string")
    _append_entry(session_id, {"type": "custom-title", "customTitle": stripped,
                               "sessionId": session_id}, project_path, config_dir)


def tag_session(
    session_id: str,
    tag: str | None,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Tag a stored session, or clear its tag with ``None`` (a ``tag`` entry; the newest wins).

    The tag is cleaned as the CLI cleans tags (NFKC; invisible, directional
    and private-use characters removed). :func:`list_sessions` reports it in
    ``SessionInfo.tag``.

    Args:
        session_id: the session's UUID.
        tag: the tag, or ``None`` to clear it.
        project_path: its working directory, or ``None`` to search all projects.
        config_dir: see :func:`claude_config_dir`.

    Raises:
        ValueError: the tag is empty after cleaning.
        InvalidSessionIdError / SessionNotFoundError: as for :func:`find_session_path`.
    """
    text = ""
    if tag is not None:
        text = _clean_text(tag).strip() if isinstance(tag, str) else ""
        if not text:
            raise ValueError("a tag must be a non-empty string (use None to clear it)")
    _append_entry(session_id, {"type": "tag", "tag": text, "sessionId": session_id},
                  project_path, config_dir)


def delete_session(
    session_id: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Delete a stored session: its transcript and its subagent transcripts.

    Args:
        session_id: the session's UUID.
        project_path: its working directory, or ``None`` to search all projects.
        config_dir: see :func:`claude_config_dir`.

    Raises:
        InvalidSessionIdError / SessionNotFoundError: as for :func:`find_session_path`.
    """
    path = find_session_path(session_id, project_path, config_dir=config_dir)
    try:
        path.unlink()
    except FileNotFoundError:
        raise SessionNotFoundError(session_id, str(path.parent)) from None
    shutil.rmtree(path.with_suffix(""), ignore_errors=True)


@attrs.frozen
class ForkResult:
    """What :func:`fork_session` made.

    Attributes:
        session_id: the new session's UUID (resume it with ``resume=``).
        path: its transcript.
    """

    session_id: str
    path: Path


def fork_session(
    session_id: str,
    project_path: str | os.PathLike[str] | None = None,
    *,
    up_to_message_id: str | None = None,
    title: str | None = None,
    config_dir: str | os.PathLike[str] | None = None,
) -> ForkResult:
    """Copy a stored session into a new one, optionally cut after a message.

    Every entry gets a fresh uuid (the ``parentUuid`` chain is kept), the
    new session id and a ``forkedFrom`` note; subagent (sidechain) entries
    and file-history snapshots are left out. The fork gets a title: ``title``,
    else the source's title or first prompt plus ``" (fork)"``. Resume it
    like any session (``claudecode.start_link(resume=result.session_id)``).

    Args:
        session_id: the source session's UUID.
        project_path: its working directory, or ``None`` to search all projects.
        up_to_message_id: keep entries up to and including this uuid.
        title: the fork's title.
        config_dir: see :func:`claude_config_dir`.

    Returns:
        The new session's id and transcript path.

    Raises:
        ValueError: nothing to fork, or ``up_to_message_id`` is not in the session.
        InvalidSessionIdError / SessionNotFoundError: as for :func:`find_session_path`.
    """
    source = find_session_path(session_id, project_path, config_dir=config_dir)
    entries = read_file(source)
    transcript = [e for e in entries if e.get("type") in _FORK_TYPES
                  and isinstance(e.get("uuid"), str) and e.get("isSidechain") is not True]
    replacements: list[Any] = []
    for e in entries:
        if e.get("type") == "content-replacement" and e.get("sessionId") == session_id \
                and isinstance(e.get("replacements"), list):
            replacements.extend(e["replacements"])
    if up_to_message_id is not None:
        cut = next((i for i, e in enumerate(transcript) if e["uuid"] == up_to_message_id), None)
        if cut is None:
            raise ValueError(f"message {up_to_message_id} is not in session {session_id}")
        transcript = transcript[:cut + 1]
    if not [e for e in transcript if e.get("type") != "progress"]:
        raise ValueError(f"session {session_id} has no messages to fork")
    new_id = str(uuid_mod.uuid4())
    mapping = {e["uuid"]: str(uuid_mod.uuid4()) for e in transcript}
    by_uuid = {e["uuid"]: e for e in transcript}
    now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    writable = [e for e in transcript if e.get("type") != "progress"]
    lines: list[dict[str, Any]] = []
    for i, original in enumerate(writable):
        parent = original.get("parentUuid")
        while isinstance(parent, str) and by_uuid.get(parent, {}).get("type") == "progress":
            parent = by_uuid[parent].get("parentUuid")  # progress entries are not copied
        logical = original.get("logicalParentUuid")
        forked = {
            **original,
            "uuid": mapping[original["uuid"]],
            "parentUuid": mapping.get(parent) if isinstance(parent, str) else None,
            "logicalParentUuid": mapping.get(logical, logical) if logical else logical,
            "sessionId": new_id,
            "timestamp": now if i == len(writable) - 1 else original.get("timestamp", now),
            "isSidechain": False,
            "forkedFrom": {"sessionId": session_id, "messageUuid": original["uuid"]},
        }
        for key in ("teamName", "agentName", "slug", "sourceToolAssistantUUID"):
            forked.pop(key, None)
        lines.append(forked)
    if replacements:
        lines.append({"type": "content-replacement", "sessionId": new_id,
                      "replacements": replacements, "uuid": str(uuid_mod.uuid4()),
                      "timestamp": now})
    name = title.strip() if isinstance(title, str) and title.strip() else None
    if name is None:
        known = summary(session_id, project_path, config_dir=config_dir)
        name = f"{known or 'Forked session'} (fork)"
    lines.append({"type": "custom-title", "sessionId": new_id, "customTitle": name,
                  "uuid": str(uuid_mod.uuid4()), "timestamp": now})
    target = source.parent / f"{new_id}.jsonl"
    data = "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for line in lines).encode()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return ForkResult(new_id, target)


def from_terms(function: str, value: Any) -> Any:
    """Rebuild the typed result of a :class:`History` function run on another node.

    The sandbox sends plain terms (messages as their transcript entries,
    records as dicts); this turns them back into what the function returns.

    Args:
        function: the function's name.
        value: its result as plain terms.

    Returns:
        The typed result.
    """
    if function in ("conversation", "get_messages", "subagent_messages"):
        return [_entry_message(dict(entry)) for entry in value]
    if function == "list_sessions":
        names = {f.name for f in attrs.fields(SessionInfo)}
        out = []
        for item in value:
            fields: dict[str, Any] = {k: v for k, v in dict(item).items() if k in names}
            fields["path"] = Path(str(fields.get("path", "")))
            out.append(SessionInfo(**fields))
        return out
    if function in ("find_session_path", "find_project_dir", "project_dir"):
        return None if value is None else Path(str(value))
    return value


class History:
    """Stored-session reading and editing, grouped as in the Elixir ``ClaudeCode.History``.

    All methods are synchronous static methods over the module functions of
    the same names (see :mod:`claudecode._history` and
    :mod:`claudecode._history_edit`). They read the transcripts on this
    machine; for a session whose CLI runs on a sandbox node, use
    :func:`claudecode.get_messages` / :func:`claudecode.list_sessions` with
    the session, which read them where they are.
    """

    list_projects = staticmethod(list_projects)
    list_sessions = staticmethod(list_sessions)
    read_session = staticmethod(read_session)
    read_file = staticmethod(read_file)
    conversation = staticmethod(conversation)
    get_messages = staticmethod(conversation)
    summary = staticmethod(summary)
    find_session_path = staticmethod(find_session_path)
    find_project_dir = staticmethod(find_project_dir)
    project_dir = staticmethod(project_dir)
    encode_project_path = staticmethod(encode_project_path)
    decode_project_dir_name = staticmethod(decode_project_dir_name)
    conversation_chain = staticmethod(conversation_chain)
    config_dir = staticmethod(claude_config_dir)
    session_info = staticmethod(session_info)
    get_session_info = staticmethod(session_info)
    list_subagents = staticmethod(list_subagents)
    subagent_messages = staticmethod(subagent_messages)
    get_subagent_messages = staticmethod(subagent_messages)
    subagent_info = staticmethod(subagent_info)
    rename_session = staticmethod(rename_session)
    tag_session = staticmethod(tag_session)
    delete_session = staticmethod(delete_session)
    fork_session = staticmethod(fork_session)
