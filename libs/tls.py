"""Mutual TLS between the services: certificates, credentials and the caller's identity.

Every process holds one certificate issued by the suite's own CA. Its identity is the URI
subject alternative name `spiffe://brandclub/<name>` (name: one of CALLERS); its DNS name
`<name>` is what a client checks when it dials that service, so a caller also knows it talks to
the service it meant. The files follow the cert-manager / Kubernetes TLS Secret layout:
`ca.crt`, `tls.crt`, `tls.key` in one directory (`TLS_DIR`), or one path each
(`TLS_CA_FILE`, `TLS_CERT_FILE`, `TLS_KEY_FILE`).

`issue_pki` makes a local CA and one certificate per caller with the `cryptography` package;
`./dev up`, `./dev bench`, `./dev admin` and the tests use it. It is never used in a
deployment: Kubernetes mounts the certificates from Secrets.
"""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

SERVICES = ("identity", "membership", "benefits", "engagement", "messaging", "gateway")
# `operator`: the `./dev admin` CLI and the local stack's demo seed.
CALLERS = (*SERVICES, "operator")
SPIFFE_PREFIX = "spiffe://brandclub/"
CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "tls.crt", "tls.key"


class TlsError(ValueError):
    """The certificate files are missing or unusable; the message names the setting."""


@dataclass(frozen=True)
class TlsFiles:
    """Where one process finds the CA, its certificate and its key."""

    ca_file: str
    cert_file: str
    key_file: str

    @classmethod
    def in_dir(cls, directory: str | os.PathLike[str]) -> TlsFiles:
        base = Path(directory)
        return cls(str(base / CA_FILE), str(base / CERT_FILE), str(base / KEY_FILE))


@dataclass(frozen=True)
class TlsIdentity:
    """The PEM bytes of the CA, this process's certificate and its private key."""

    ca: bytes
    cert: bytes
    key: bytes

    def server_credentials(self) -> grpc.ServerCredentials:
        """TLS that refuses a client without a certificate issued by our CA."""
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """TLS that trusts only our CA and presents this process's certificate."""
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)


@functools.lru_cache(maxsize=64)
def _read(files: TlsFiles) -> TlsIdentity:
    contents: list[bytes] = []
    for setting, path in (("TLS_CA_FILE", files.ca_file), ("TLS_CERT_FILE", files.cert_file),
                          ("TLS_KEY_FILE", files.key_file)):
        if not path:
            raise TlsError(f"{setting} (or TLS_DIR) must name this service's TLS files")
        try:
            contents.append(Path(path).read_bytes())
        except OSError as exc:
            raise TlsError(f"{setting}: cannot read {path}: {exc.strerror}") from None
        if b"-----BEGIN " not in contents[-1]:
            raise TlsError(f"{setting}: {path} is not a PEM file")
    return TlsIdentity(*contents)


def load_identity(files: TlsFiles) -> TlsIdentity:
    """Read the files once per process (cached by path)."""
    return _read(files)


def secure_channel(address: str, identity: TlsIdentity, *, peer: str,
                   options: Iterable[tuple[str, object]] = (),
                   interceptors: Iterable[object] | None = None) -> grpc.aio.Channel:
    """A TLS channel to the service `peer`, whose certificate must carry the DNS name `peer`.

    The address may be an IP or a Kubernetes service name; the expected server name is the
    service's own name, so every certificate needs only that one DNS name.
    """
    return grpc.aio.secure_channel(
        address, identity.channel_credentials(),
        options=[("grpc.ssl_target_name_override", peer), *options],
        interceptors=interceptors,
    )


def peer_of_service(full_service_name: str) -> str:
    """`brandclub.identity.v1.IsvService` -> `identity`: the process that serves it."""
    parts = full_service_name.split(".")
    if len(parts) >= 3 and parts[0] == "brandclub" and parts[1] in SERVICES:
        return parts[1]
    raise ValueError(f"no Brandclub service serves {full_service_name!r}")


_IDENTITIES = {f"{SPIFFE_PREFIX}{name}".encode(): name for name in CALLERS}


def caller_of(peer_identities: Iterable[bytes] | None) -> str | None:
    """The authenticated caller's name, or None when the peer presented no valid certificate.

    `peer_identities` is `ServicerContext.peer_identities()`: the subject alternative names of
    a certificate the transport has already verified against our CA (None on a plaintext
    connection). Only the URI `spiffe://brandclub/<caller>` names a caller.
    """
    for value in peer_identities or ():
        name = _IDENTITIES.get(value)
        if name is not None:
            return name
    return None


# --- certificate issuing (local development and tests) ---------------------------------

def issue_pki(directory: str | os.PathLike[str], names: Iterable[str] = CALLERS, *,
              days: int = 825) -> Path:
    """Create `directory/<name>/{ca.crt,tls.crt,tls.key}` for every name, one CA for all.

    Idempotent: an existing CA and certificates are kept (so running services keep working);
    a missing certificate is issued by the existing CA.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    root = Path(directory)
    ca_dir = root / "ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca_cert_path, ca_key_path = ca_dir / CA_FILE, ca_dir / "ca.key"
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(minutes=5)
    end = now + datetime.timedelta(days=days)

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    def write_private(path: Path, data: bytes) -> None:
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_bytes(data)

    if ca_cert_path.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "brandclub local CA")])
        ca_cert = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        write_private(ca_key_path, pem_key(ca_key))
        ca_cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)

    for name in names:
        target = root / name
        if all((target / f).exists() for f in (CA_FILE, CERT_FILE, KEY_FILE)) \
                and (target / CA_FILE).read_bytes() == ca_pem:
            continue
        target.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([
                x509.UniformResourceIdentifier(f"{SPIFFE_PREFIX}{name}"),
                x509.DNSName(name),
            ]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([
                x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write_private(target / KEY_FILE, pem_key(key))
        (target / CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (target / CA_FILE).write_bytes(ca_pem)
    return root


def main(argv: list[str] | None = None) -> None:
    """`python -m libs.tls DIR [NAME ...]`: a local CA and certificates under DIR (every caller
    by default); existing ones are kept. Used for the dev overlay's Secrets (Tiltfile)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m libs.tls DIR [NAME ...]")
    root = issue_pki(args[0], args[1:] or CALLERS)
    print(f"tls: certificates under {root}")


if __name__ == "__main__":
    main()
