"""HTTPS for `serve`: the `--tls-*` options, the certificate files they name or make, and the
certificate's SHA-256 fingerprint that clients pin.

`--tls-cert FILE --tls-key FILE` serve a certificate the person has (from their CA, or
`mkcert`). `--tls-self-signed` makes one for this machine's names and addresses with the
`cryptography` package, keeps it in the server's data folder (`<data>/tls/`, the key readable by
its owner only) and uses the same one on every start, so a fingerprint pinned in the add-on
stays valid until the certificate expires or the files are deleted.
"""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import InputError

SELF_SIGNED_FOLDER = "tls"
SELF_SIGNED_CERT = "server-cert.pem"
SELF_SIGNED_KEY = "server-key.pem"
SELF_SIGNED_DAYS = 3650  # pinned by fingerprint, so a long life saves re-pinning
RENEW_BEFORE_DAYS = 30  # a certificate this close to its end is replaced on start


@dataclass(frozen=True)
class TLSFiles:
    """The certificate chain and key that uvicorn serves, and the fingerprint of the certificate."""

    cert: Path
    key: Path
    fingerprint: str  # "AB:CD:..." (SHA-256 of the DER certificate)


def add_tls_options(parser) -> None:
    group = parser.add_argument_group("HTTPS (for a server that other machines reach)")
    group.add_argument("--tls-cert", type=Path, default=None, metavar="FILE",
                       help="serve HTTPS with this PEM certificate (chain); needs --tls-key")
    group.add_argument("--tls-key", type=Path, default=None, metavar="FILE", help="the PEM private key of --tls-cert")
    group.add_argument("--tls-self-signed", action="store_true",
                       help="serve HTTPS with a certificate made for this machine's names and kept in the data "
                            "folder (~/.cache/glimpse3d/tls); its SHA-256 fingerprint is printed for clients to pin")


def tls_files_from_args(args, data_dir: Path, host: str | None = None) -> TLSFiles | None:
    """The TLS files the `serve` flags ask for (made or checked now), or None for plain HTTP.
    `host`: the address served (the settings' host, which may come from GLIMPSE_HOST), else `--host`."""
    if args.tls_self_signed and (args.tls_cert or args.tls_key):
        raise InputError("--tls-self-signed makes its own certificate: leave out --tls-cert and --tls-key",
                         code="bad_parameter")
    if args.tls_self_signed:
        return self_signed_files(Path(data_dir) / SELF_SIGNED_FOLDER, host if host is not None else args.host)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise InputError("--tls-cert and --tls-key go together: give both (or --tls-self-signed)",
                         code="bad_parameter")
    if args.tls_cert:
        return checked_files(args.tls_cert, args.tls_key)
    return None


def clear_text_warning(host: str) -> str:
    """The warning for a server that other machines reach (not on loopback) without TLS."""
    return (f"listening on {host} without TLS: the bearer token and the images cross the network in clear text. "
            "Serve HTTPS with --tls-self-signed, or --tls-cert FILE --tls-key FILE")


def checked_files(cert: Path, key: Path) -> TLSFiles:
    """The files, once they load as a certificate and its key (a clear error before serving)."""
    cert, key = Path(cert).expanduser().resolve(), Path(key).expanduser().resolve()
    for path in (cert, key):
        if not path.is_file():
            raise InputError(f"{path} does not exist or is not a file", code="bad_parameter")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise InputError(f"cannot use {cert} with {key} for HTTPS ({exc}); both must be PEM files, the key "
                         "the certificate's own and not protected by a passphrase", code="bad_parameter") from None
    return TLSFiles(cert, key, certificate_fingerprint(cert))


def certificate_fingerprint(cert: Path) -> str:
    """SHA-256 of the first certificate in the PEM file `cert`, as AB:CD:... (what clients pin)."""
    try:
        der = ssl.PEM_cert_to_DER_cert(Path(cert).read_text(encoding="ascii"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{cert} is not a PEM certificate ({exc})", code="bad_parameter") from None
    return format_fingerprint(hashlib.sha256(der).hexdigest())


def format_fingerprint(hex_digest: str) -> str:
    digest = hex_digest.upper()
    return ":".join(digest[index:index + 2] for index in range(0, len(digest), 2))


def self_signed_files(folder: Path, host: str) -> TLSFiles:
    """The certificate kept in `folder`, made first when missing or about to expire."""
    cert, key = folder / SELF_SIGNED_CERT, folder / SELF_SIGNED_KEY
    if not (cert.is_file() and key.is_file() and _valid_for(cert, RENEW_BEFORE_DAYS)):
        make_self_signed(cert, key, machine_names(host))
    return checked_files(cert, key)


def machine_names(host: str = "") -> tuple[list[str], list]:
    """(DNS names, IP addresses) by which clients may reach this machine: its host name, its fully
    qualified name, localhost, the loopback addresses, the addresses its name resolves to, the
    address of the default route and the `--host` address when it is a specific one."""
    names = {"localhost"}
    for name in (socket.gethostname(), socket.getfqdn()):
        if name and not _is_ip(name):
            names.add(name.lower())
    addresses = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    if _is_ip(host) and not ipaddress.ip_address(host).is_unspecified:
        addresses.add(ipaddress.ip_address(host))
    elif host and not _is_ip(host):
        names.add(host.lower())
    try:
        for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None):
            addresses.add(ipaddress.ip_address(sockaddr[0].split("%")[0]))
    except OSError:
        pass
    try:  # the address other machines see: the one of the default route (no packet is sent)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            addresses.add(ipaddress.ip_address(probe.getsockname()[0]))
    except OSError:
        pass
    return sorted(names), sorted(addresses, key=lambda address: (address.version, int(address)))


def make_self_signed(cert: Path, key: Path, names_and_addresses) -> None:
    """Write a new self-signed certificate for the names and addresses, and its key (mode 0600)."""
    names, addresses = names_and_addresses
    private_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "glimpse3d"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Glimpse3D SyncDreamer server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    public_key = private_key.public_key()
    # Its own trust anchor: CA:TRUE with keyCertSign, so clients can also trust it as a CA file.
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]
                                                   + [x509.IPAddress(address) for address in addresses]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=False,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(private_key, hashes.SHA256()))
    cert.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
    _write_private(key, key_bytes)
    partial = cert.with_name(cert.name + ".partial")
    partial.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    os.replace(partial, cert)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` readable by its owner only, from the first byte on, and replace `path`."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def _valid_for(cert: Path, days: int) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError):
        return False
    remaining = certificate.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    return remaining > datetime.timedelta(days=days)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
