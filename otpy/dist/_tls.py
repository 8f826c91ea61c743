"""TLS for distribution connections, interoperable with ``erl -proto_dist inet_tls``.

A `TLSConfig` holds the node's certificate and key and the CA that signs the
peers' certificates; it builds the server context (connections we accept)
and the client context (connections we make). With ``mutual=True`` (the
default) both sides must present a certificate signed by the CA, as with
erl's ``verify_peer`` + ``fail_if_no_peer_cert``; the client also checks that
the peer's certificate is for the host in its node name.
"""

from __future__ import annotations

import ssl

import attrs

__all__ = ["TLSConfig", "tls_failure"]


@attrs.frozen
class TLSConfig:
    """Certificates for TLS distribution.

    Attributes:
        certfile: this node's certificate (PEM; may include the chain).
        keyfile: its private key (PEM).
        cafile: the CA certificate(s) that sign peers' certificates.
        mutual: require a client certificate from connecting nodes.
        check_hostname: the client checks the peer's certificate against the
            host part of the peer's node name.
    """

    certfile: str
    keyfile: str
    cafile: str
    mutual: bool = True
    check_hostname: bool = True

    def server_context(self) -> ssl.SSLContext:
        """The context for connections we accept."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.cafile)
        ctx.load_cert_chain(self.certfile, self.keyfile)
        ctx.verify_mode = ssl.CERT_REQUIRED if self.mutual else ssl.CERT_NONE
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """The context for connections we make."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.cafile)
        ctx.check_hostname = self.check_hostname
        ctx.load_cert_chain(self.certfile, self.keyfile)
        return ctx


def tls_failure(exc: BaseException) -> str:
    """Why a TLS handshake failed, for logs and errors.

    Args:
        exc: what the handshake raised (trio wraps the `ssl` error, whose text says why).

    Returns:
        The text of the underlying error, or its type's name when it has none.
    """
    why = exc.__cause__ or exc
    return str(why) or type(why).__name__
