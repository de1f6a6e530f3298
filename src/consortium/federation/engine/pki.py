"""Transport security of the Flower engine: a private CA, the SuperLink's TLS certificate and
SuperNode authentication keys, generated with ``cryptography`` (home-made, small).

``ensure_pki(dir)`` creates, at first use, a certificate authority and a SuperLink server
certificate signed by it (valid for ``127.0.0.1``, ``::1``, ``localhost`` and any extra host
names), EC P-384 keys written with mode 0600. SuperNodes verify the SuperLink with the CA's
certificate only (``--root-certificates``); they never see a private key of the hub.
``node_key(path)`` creates (once) a SuperNode's EC P-384 key pair in OpenSSH format: the
private key stays with the node (0600), the public key is registered with the SuperLink
(``flwr supernode register``) so that only known nodes join a run when the SuperLink runs with
``--enable-supernode-auth``.

>>> import tempfile
>>> pki = ensure_pki(tempfile.mkdtemp())
>>> pki.ca_cert.read_text().startswith("-----BEGIN CERTIFICATE-----"), oct(pki.server_key.stat().st_mode & 0o777)
(True, '0o600')
>>> priv, pub = node_key(Path(tempfile.mkdtemp()) / "node.key")
>>> pub.startswith("ecdsa-sha2-nistp384 ")
True
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consortium.errors import IntegrityError
from consortium.fileutil import write_private

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
VALID_DAYS = 825


@dataclass(frozen=True)
class PKI:
    """Paths of the CA certificate and the SuperLink's certificate and key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Consortium"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for h in dict.fromkeys(hosts):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            entries.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(entries)


def ensure_pki(directory: str | os.PathLike[str], hosts: tuple[str, ...] = ()) -> PKI:
    """The CA and SuperLink certificate under ``directory``, created at first call.

    A server certificate that does not cover every name in ``hosts`` is re-issued by the same CA
    (nodes keep trusting it)."""
    d = Path(directory)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    pki = PKI(d / "ca.pem", d / "superlink.pem", d / "superlink.key")
    names = (*LOOPBACK_NAMES, *hosts)
    now = dt.datetime.now(dt.UTC)
    ca_key_path = d / "ca.key"
    if not (pki.ca_cert.exists() and ca_key_path.exists()):
        new_ca_key = ec.generate_private_key(ec.SECP384R1())
        ca = (x509.CertificateBuilder().subject_name(_name("Consortium federation CA"))
              .issuer_name(_name("Consortium federation CA")).public_key(new_ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=3650))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False,
                                           encipher_only=False, decipher_only=False), critical=True)
              .sign(new_ca_key, hashes.SHA384()))
        write_private(ca_key_path, _key_pem(new_ca_key))
        write_private(pki.ca_cert, ca.public_bytes(serialization.Encoding.PEM), 0o644)
        pki.server_cert.unlink(missing_ok=True)
    if pki.server_cert.exists() and pki.server_key.exists() and _covers(pki.server_cert, names):
        return pki
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise IntegrityError(f"the federation CA key is a {type(ca_key).__name__}, not the EC key the hub made",
                             hint="delete the federation PKI folder so the hub makes a new CA")
    key = ec.generate_private_key(ec.SECP384R1())
    cert = (x509.CertificateBuilder().subject_name(_name("consortium-superlink")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(_san(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA384()))
    write_private(pki.server_key, _key_pem(key))
    write_private(pki.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return pki


def _covers(cert_path: Path, names: tuple[str, ...]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.not_valid_after_utc < dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    return all(str(ipaddress.ip_address(n)) in have if _is_ip(n) else n in have for n in names)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def node_key(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """A SuperNode's authentication key at ``path`` (created once, 0600) and its OpenSSH public key."""
    p = Path(path)
    if p.exists():
        key = serialization.load_ssh_private_key(p.read_bytes(), None)
    else:
        key = ec.generate_private_key(ec.SECP384R1())
        write_private(p, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return p, pub.decode()


def check_public_key(text: str) -> str:
    """``text`` if it is an OpenSSH EC public key on a NIST curve (what the SuperLink accepts)."""
    from consortium.errors import InvalidInput

    try:
        key = serialization.load_ssh_public_key(text.strip().encode())
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"the node's public key is not an OpenSSH public key: {e}",
                           hint="send the key `consortium node` generated (ecdsa-sha2-nistp384 ...)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidInput("the node's public key must be an EC key (P-256, P-384 or P-521)")
    return text.strip()
