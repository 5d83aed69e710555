"""Throwaway TLS files for test brokers: a CA, a server certificate it signed, and a client certificate."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Any


class CryptographyMissing(RuntimeError):
    """The TLS tests need the cryptography package."""


def make_tls_files(folder: Path, *,
                   server_names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> dict[str, Path]:
    """Write ca.crt, server.crt/.key (for ``server_names``), client.crt/.key and other_ca.crt into ``folder``.

    other_ca.crt is a second CA that signed nothing here: a broker or client trusting only it
    rejects every certificate above.
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        raise CryptographyMissing("the TLS tests need cryptography: pip install -e '.[test]'") from None

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def certificate(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool,
                    names: tuple[str, ...] = ()) -> bytes:
        builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            alt: list[x509.GeneralName] = []
            for entry in names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(entry)))
                except ValueError:
                    alt.append(x509.DNSName(entry))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def private(key: Any) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca, other = "fer-edge test CA", "fer-edge other CA"
    files = {kind: folder / file for kind, file in (
        ("ca", "ca.crt"), ("other_ca", "other_ca.crt"), ("cert", "server.crt"), ("key", "server.key"),
        ("client_cert", "client.crt"), ("client_key", "client.key"))}
    files["ca"].write_bytes(certificate(ca, ca_key, ca, ca_key, ca=True))
    files["other_ca"].write_bytes(certificate(other, other_key, other, other_key, ca=True))
    files["cert"].write_bytes(certificate(server_names[0], server_key, ca, ca_key, ca=False,
                                          names=server_names))
    files["key"].write_bytes(private(server_key))
    files["client_cert"].write_bytes(certificate("fer-edge test client", client_key, ca, ca_key, ca=False))
    files["client_key"].write_bytes(private(client_key))
    for key_file in (files["key"], files["client_key"]):
        key_file.chmod(0o600)
    return files
