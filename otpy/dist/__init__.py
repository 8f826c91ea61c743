"""The wire: Erlang distribution, above the process runtime.

- `_etf` (with the optional C decoder `_etf_c`): the External Term Format codec.
- `_epmd` / `_epmd_io`: the port mapper protocol and its client and server;
  `_epmd_daemon`: that server as a daemon process of its own.
- `_handshake` / `_handshake_io`: the connection handshake (sans-IO and I/O).
- `_control`: control messages and how exit reasons cross the wire.
- `_connection`: one connection's outbox, links and monitors.
- `_distribution`: a node's connections: listening, connecting, reading, writing.
- `_cookie`: cookies checked, read and created as ``erl`` does.
- `_show`: peer data as bounded, escaped text for logs and errors.
- `_tls`, `_global`, `rpc`: TLS distribution, global names, rpc and ``rex``.

The public names are re-exported from `otpy` (and `otpy.rpc`).
"""
