"""An app node in its own OS process, for the "app node killed" test.

    python _app_node.py NODE COOKIE EPMD_PORT SANDBOX OPTIONS_JSON

Starts a session on SANDBOX with the Node adapter, runs one turn, prints
``@@CLI <os pid>`` and waits to be killed.
"""

from __future__ import annotations

import json
import sys

import trio

import claudecode
import otpy


async def main(sandbox: str, options: dict[str, object]) -> None:
    session = await claudecode.start_link(adapter=claudecode.adapters.Node(sandbox), **options)
    await claudecode.stream(session, "hello").final_text()
    info = await claudecode.adapter_info(session)
    print(f"@@CLI {info['os_pid']}", flush=True)
    await trio.sleep_forever()


if __name__ == "__main__":
    node, cookie, port, sandbox, raw = sys.argv[1:6]
    otpy.run(main, sandbox, json.loads(raw), node=node, cookie=cookie, epmd_port=int(port),
             net_ticktime=1.0)
