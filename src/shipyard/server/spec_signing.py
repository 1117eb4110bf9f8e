"""Deployment specifications as the stock CodeDeploy agent takes them: signed PKCS#7.

A running stock agent (1.8.1) accepts only ``PKCS7/JSON`` envelopes. It parses the PEM,
calls ``verify([], store, nil, NOVERIFY)`` and reads the signed content: the signer
certificate must travel inside the message (no certificates are passed in), and
``NOVERIFY`` skips the chain check against the AWS signer CA it bundles, so a
certificate of the server's own is enough. (It ignores ``verify``'s result too, so the
signature guards nothing there; TLS does.) The key and the self-signed certificate are
made at first start and kept in the data dir, the key in a 0600 file like the server's
other keys.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

KEY_FILE = "spec-signing.key"
CERT_FILE = "spec-signing.crt"
SIGNED_FORMAT = "PKCS7/JSON"
CERT_YEARS = 20  # the agent never checks validity: long-lived, so it never needs rotating


@dataclass(frozen=True)
class SpecSigner:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def sign(self, content: bytes) -> str:
        """``content`` as a PEM PKCS#7 SignedData holding it and the signer certificate."""
        signed = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(content)
            .add_signer(self.certificate, self.key, hashes.SHA256())
            .sign(serialization.Encoding.PEM, [pkcs7.PKCS7Options.Binary])
        )
        return signed.decode("ascii")


def load_or_create(data_dir: Path, now: float) -> SpecSigner:
    """The server's signing key and certificate, made on first start."""
    key_path, cert_path = data_dir / KEY_FILE, data_dir / CERT_FILE
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} does not hold an EC private key")
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return SpecSigner(key, certificate)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _self_signed(key, dt.datetime.fromtimestamp(now, dt.UTC))
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    # Public, but every file in the data dir is the server's alone (server/data_dir.py).
    _write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return SpecSigner(key, certificate)


def _self_signed(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Shipyard deployment signer")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new 0600 file, atomically (a crash leaves no half key)."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
