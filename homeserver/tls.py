"""TLS for listeners (`tls: true`): the server context from the configured PEM files, and a
self-signed pair for development (`generate-config --federation-port`)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Any

from homeserver.errors import ConfigError


def server_tls_options(cert_path: str, key_path: str) -> Any:
    """Twisted `CertificateOptions` for a TLS listener.

    Raises:
        ConfigError: the files are missing or not a matching PEM certificate and key.
    """
    from twisted.internet import ssl

    try:
        with open(cert_path, "rb") as f:
            cert_pem = f.read()
        with open(key_path, "rb") as f:
            key_pem = f.read()
    except OSError as e:
        raise ConfigError(f"Cannot read TLS certificate or key: {e}") from e
    try:
        certificate = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    except Exception as e:  # noqa: BLE001 - OpenSSL raises several types for bad PEM
        raise ConfigError(
            f"tls_certificate_path / tls_private_key_path: not a matching PEM certificate "
            f"and private key ({e})") from e
    return certificate.options()


def generate_self_signed(cert_path: str, key_path: str, server_name: str,
                         days: int = 3650) -> None:
    """Write a self-signed certificate for `server_name` (for development set-ups only)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    host = server_name.rsplit(":", 1)[0].strip("[]") if not server_name.startswith("[") \
        else server_name[1:server_name.index("]")]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .sign(key, hashes.SHA256()))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
