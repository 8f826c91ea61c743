"""Throwaway TLS certificates for tests: a private CA and one node certificate.

`make_test_certificates` writes a private CA and one node certificate signed
by it (for ``localhost`` / ``127.0.0.1`` by default) with the ``openssl``
command, and returns an `otpy.TLSConfig` for them. For tests and local
experiments only: the keys are unencrypted and the CA lives next to them.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from pathlib import Path

from otpy.dist._tls import TLSConfig

__all__ = ["make_test_certificates"]


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_test_certificates(directory: str | Path, *, ca_name: str = "otpy-test-ca",
                           hosts: Sequence[str] = ("localhost", "127.0.0.1"),
                           days: int = 2) -> TLSConfig:
    """Create ``ca.pem``, ``node.pem`` and ``node.key`` in ``directory``.

    Args:
        directory: where to write (created if missing).
        ca_name: the CA's common name (two calls with different names give
            CAs that do not trust each other).
        hosts: DNS names and IP addresses the node certificate is valid for.
        days: validity.

    Returns:
        A `TLSConfig` using them (mutual authentication).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    # The extensions strict verification wants (Python 3.13's default contexts set
    # VERIFY_X509_STRICT): key usage on the CA, key identifiers on both.
    (d / "ca.ext").write_text(
        "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
    _openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", str(days), "-subj", f"/CN={ca_name}", "-config", "ca.ext",
             "-extensions", "ca")
    _openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out",
             "node.csr", "-subj", f"/CN={hosts[0]}")
    names = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            names.append(f"IP:{host}")
        except ValueError:
            names.append(f"DNS:{host}")
    (d / "san.ext").write_text(
        f"subjectAltName={','.join(names)}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    _openssl(d, "x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "node.pem", "-days", str(days), "-extfile", "san.ext")
    return TLSConfig(str(d / "node.pem"), str(d / "node.key"), str(d / "ca.pem"))
