"""Many conversations, few CLIs: a CLI budget and hibernating sessions.

Three users' conversations share a budget of two live CLIs. The third user's
first question makes the session idle longest hibernate (its CLI stops, its
conversation stays on disk); when that user comes back, the conversation is
resumed by a new CLI — the same session id, one more turn of the same
conversation (FakeAnthropic's echo counts the messages: ``#4`` is the second
turn of a remembered conversation). The idle timeout then hibernates every CLI.

Offline: FakeAnthropic answers on loopback and the real pinned CLI talks to it.

    python examples/scaling_sessions.py
"""

from __future__ import annotations

import os
import tempfile

import trio

import claudecode
import otpy
from claudecode.testing import FakeAnthropic


def live_clis() -> int:
    """CLI processes this program runs now (children named ``claude``)."""
    count = 0
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        if b"(claude)" in stat and fields[0] != b"Z" and int(fields[1]) == os.getpid():
            count += 1
    return count


async def main() -> None:
    async with FakeAnthropic.serve(log_requests=False) as fake:
        home = tempfile.mkdtemp(prefix="scaling-example-")
        options = {
            "env": {"HOME": home, "CLAUDE_CONFIG_DIR": f"{home}/.claude", **fake.env()},
            "cwd": home,
            "cli_idle_timeout": 3.0,  # hibernate after 3 s without a turn
        }
        users = ["ada", "bob", "cy"]
        sup = await claudecode.Supervisor.start_link(
            [{"name": user, **options} for user in users], max_live_clis=2)

        for user in users:
            answer = await claudecode.stream(user, f"hello from {user}").final_text()
            print(f"{user}: {answer}")
        # cy needed a CLI while two were alive: ada's, idle longest, was stopped
        print("ada:", await claudecode.health("ada"), "| cy:", await claudecode.health("cy"))

        ada_id = await claudecode.get_session_id("ada")
        answer = await claudecode.stream("ada", "I am back").final_text()
        print(f"ada: {answer}")
        print("same conversation:", await claudecode.get_session_id("ada") == ada_id)
        print(f"live CLIs now: {live_clis()} (never more than max_live_clis=2)")

        budget = (await claudecode.adapter_info("ada"))["cli_budgets"][0]
        info = await claudecode.CLIBudget.info(budget)
        print(f"budget: at most {info.peak_live} CLIs were alive at once")

        while any([await claudecode.health(u) != "hibernated" for u in users]):
            await trio.sleep(0.1)  # the idle timeout stops every CLI
        print(f"after the idle timeout: {live_clis()} CLIs, every conversation kept")

        otpy.unlink(sup)
        await otpy.stop(sup)
        print(f"stopped: {live_clis()} CLIs left")


if __name__ == "__main__":
    otpy.run(main)
