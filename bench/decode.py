"""Decode time against input size, for flat and hostile nested shapes, both decoders.

Each shape is built at several sizes (doubling); the table gives the best of
``--repeat`` decodes per size, the time per input byte, and the growth factor
from one size to the next (2.0 means linear: twice the bytes, twice the time).
Shapes:

* ``flat list``: ``[0, 0, ..., 0]`` (the baseline);
* ``nested tails``: 500 one-element lists whose tails nest, around a flat list
  (quadratic-ish before issue 11: every level copied the list below it);
* ``announcing tuples``: 500 nested tuples, each announcing as many elements as
  bytes are left (the C decoder allocated all of them before issue 11);
* ``equal-key maps``: maps with keys 1 and 1.0 nested n deep (each level was
  decoded twice before issue 11: 2**n);
* ``flat map``: ``#{1 => 0, 2 => 0, ...}``.

    python bench/decode.py                # sizes up to 8 MB, C and Python decoders
    python bench/decode.py --max-mb 2 --repeat 3
    PYTHONPATH=<old checkout> python bench/decode.py --max-depth 20   # the code before
"""

from __future__ import annotations

import argparse
import contextlib
import struct
import time
from collections.abc import Callable
from typing import Any

from otpy.dist import _etf


def flat_list(n: int) -> bytes:
    return b"l" + struct.pack(">I", n) + b"a\x00" * n + b"j"


def nested_tails(n: int) -> bytes:
    return b"l\0\0\0\x01a\x00" * 500 + flat_list(n)


def announcing_tuples(n: int) -> bytes:
    total = 2 * n
    head = b"".join(b"i" + struct.pack(">I", total - 5 * (i + 1)) for i in range(500))
    return head + b"j" * (total - len(head))


def flat_map(n: int) -> bytes:
    out = bytearray(b"t" + struct.pack(">I", n))
    for i in range(n):
        out += b"b" + struct.pack(">i", i) + b"a\x00"
    return bytes(out)


SHAPES: dict[str, Callable[[int], bytes]] = {
    "flat list": flat_list,
    "nested tails": nested_tails,
    "announcing tuples": announcing_tuples,
    "flat map": flat_map,
}


def best(decode: Callable[[bytes, int], Any], data: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.suppress(_etf.ETFDecodeError):
            decode(data, 0)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-mb", type=float, default=8.0, help="largest input, MB")
    parser.add_argument("--repeat", type=int, default=5, help="decodes per size (best taken)")
    parser.add_argument("--max-depth", type=int, default=160,
                        help="deepest equal-key maps (keep it near 20 on code before issue 11)")
    args = parser.parse_args()
    decoders: list[tuple[str, Callable[[bytes, int], Any]]] = [("python", _etf._py_decode_at)]
    if _etf._c_decode_at is not None:
        decoders.insert(0, ("C", _etf._c_decode_at))
    print("| decoder | shape | input bytes | best ms | ns/byte | x previous |")
    print("|---|---|---|---|---|---|")
    for name, decode in decoders:
        for shape, build in SHAPES.items():
            previous = None
            n = 62_500
            while 2 * n <= args.max_mb * 1e6 or n == 62_500:
                data = build(n)
                took = best(decode, data, args.repeat if len(data) < 4e6 else 2)
                growth = f"{took / previous:.2f}" if previous else ""
                print(f"| {name} | {shape} | {len(data):,} | {took * 1e3:.1f} | "
                      f"{took / len(data) * 1e9:.1f} | {growth} |", flush=True)
                previous = took
                n *= 2
        # Maps with keys equal for Python: nesting depth, not size, is what grows.
        previous = None
        for depth in (d for d in (10, 20, 40, 80, 160) if d <= args.max_depth):
            body = b"a\x00"
            for _ in range(depth):
                body = b"t\0\0\0\x02a\x01" + body + b"F" + struct.pack(">d", 1.0) + b"a\x00"
            took = best(decode, body, args.repeat)
            growth = f"{took / previous:.2f}" if previous else ""
            print(f"| {name} | equal-key maps, {depth} deep | {len(body):,} | "
                  f"{took * 1e3:.2f} | {took / len(body) * 1e9:.1f} | {growth} |", flush=True)
            previous = took


if __name__ == "__main__":
    main()
