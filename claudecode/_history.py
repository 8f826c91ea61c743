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

Everything here is plain synchronous file reading: transcripts are small and
local, and the callers (tools, tests, the session's ``get_messages``) are
happy to run it directly or in ``trio.to_thread.run_sync``. Unreadable lines
(e.g. a line cut short by a crash) are skipped, never fatal.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final, cast

import attrs

from claudecode._messages import Message, json_loads, parse_message
from claudecode._protocol_errors import InvalidSessionIdError, SessionNotFoundError

__all__ = [
    "History",
    "SessionInfo",
    "claude_config_dir",
    "conversation",
    "conversation_chain",
    "decode_project_dir_name",
    "encode_project_path",
    "find_project_dir",
    "find_session_path",
    "list_projects",
    "list_sessions",
    "project_dir",
    "projects_dir",
    "read_file",
    "read_session",
    "summary",
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
    )


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


class History:
    """Stored-session reading, grouped as in the Elixir ``ClaudeCode.History``.

    All methods are synchronous static methods over the module functions of
    the same names (see :mod:`claudecode._history`).
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
