"""Who signs: a certificate chain and its private key.

By default a signing identity is made on first start in the user's data folder: a certificate authority
used once to issue a leaf certificate (P-256, the email-protection usage C2PA accepts), then forgotten,
so the only secret kept is the leaf's key (mode 0600). A studio may use its own certificate instead, and
a public demo signs with a key that lives as long as the process.
"""

from __future__ import annotations

import datetime
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

CHAIN_FILE = "signer.pem"  # the leaf certificate, then its issuer
KEY_FILE = "signer.key"  # PKCS #8, readable by its owner only
VALID_DAYS = 10 * 365


@dataclass(frozen=True)
class Identity:
    """A certificate chain (PEM, leaf first) and its private key (PEM), and whose it is in words."""

    chain: bytes
    key: bytes = field(repr=False)
    kind: str  # "local" (made here on first start), "own" (the studio's certificate) or "demo" (this process)

    @classmethod
    def local(cls, folder: str | Path) -> Identity:
        """The identity kept in `folder`, made there first if it has none."""
        folder = Path(folder).expanduser()
        chain_file, key_file = folder / CHAIN_FILE, folder / KEY_FILE
        if not (chain_file.is_file() and key_file.is_file()):
            chain, key = make_chain(f"Atelier local signer {secrets.token_hex(4)}")
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write(key_file, key, 0o600)  # the key first: a chain without its key is never left alone
            _write(chain_file, chain, 0o644)
        return cls(chain_file.read_bytes(), key_file.read_bytes(), "local")

    @classmethod
    def per_process(cls) -> Identity:
        """A key for this process only (a public demo): nothing written, gone when the process ends."""
        chain, key = make_chain("Atelier public demo (a key of this run only)")
        return cls(chain, key, "demo")

    @classmethod
    def from_files(cls, certificate: str | Path, key: str | Path) -> Identity:
        """The studio's own certificate chain and key. Raises ValueError with a sentence that names the file
        that could not be used."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        try:
            chain = Path(certificate).expanduser().read_bytes()
            leaf = x509.load_pem_x509_certificates(chain)[0]
        except (OSError, ValueError, IndexError) as e:
            raise ValueError(f"--c2pa-cert: {certificate} is not a readable PEM certificate chain ({e})") from None
        try:
            key_pem = Path(key).expanduser().read_bytes()
            private = serialization.load_pem_private_key(key_pem, password=None)
        except (OSError, ValueError, TypeError) as e:
            raise ValueError(f"--c2pa-key: {key} is not a readable, unencrypted PEM private key ({e})") from None
        if private.public_key().public_numbers() != leaf.public_key().public_numbers():
            raise ValueError(f"--c2pa-key: {key} is not the key of the first certificate in {certificate}")
        return cls(chain, key_pem, "own")

    @property
    def name(self) -> str:
        """The signer's name as its certificate gives it."""
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        leaf = x509.load_pem_x509_certificates(self.chain)[0]
        names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else leaf.subject.rfc4514_string()

    @property
    def algorithm(self) -> str:
        """The C2PA signing algorithm for this key: ES256/ES384/ES512, Ed25519 or PS256."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519

        private = serialization.load_pem_private_key(self.key, password=None)
        if isinstance(private, ec.EllipticCurvePrivateKey):
            return {256: "ES256", 384: "ES384", 521: "ES512"}[private.curve.key_size]
        return "Ed25519" if isinstance(private, ed25519.Ed25519PrivateKey) else "PS256"

    @property
    def described(self) -> str:
        """Whose key signs, in words, for the page and the log."""
        return {
            "local": f"“{self.name}”, a key made on this computer on first start (not on any public trust list)",
            "own": f"“{self.name}”, this studio's own certificate",
            "demo": f"“{self.name}”, a key that lives only as long as this server process",
        }[self.kind]


def trust_anchors(path: str | Path) -> bytes:
    """The certificates of a PEM file, to trust what is signed under them. Raises ValueError naming the file."""
    from cryptography import x509

    try:
        data = Path(path).expanduser().read_bytes()
        x509.load_pem_x509_certificates(data)
    except (OSError, ValueError) as e:
        raise ValueError(f"--c2pa-trust: {path} is not a readable PEM file of certificates ({e})") from None
    return data


def make_chain(name: str) -> tuple[bytes, bytes]:
    """A leaf certificate for `name` issued by a certificate authority made for it: (chain PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def subject(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Atelier")])

    def usage(**allowed: bool) -> x509.KeyUsage:
        names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{n: allowed.get(n, False) for n in names})

    now = datetime.datetime.now(datetime.timezone.utc)
    authority_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(name: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(name).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))

    authority_name = subject(f"{name} (issuer)")
    authority = (certificate(authority_name, authority_name, authority_key.public_key())
                 .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                 .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
                 .sign(authority_key, hashes.SHA256()))
    leaf = (certificate(subject(name), authority_name, leaf_key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()),
                           critical=False)
            .sign(authority_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + authority.public_bytes(pem)
    key = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, key


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary name created with `mode` (never readable by others, even for a moment)."""
    partial = path.with_name(f".partial-{path.name}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as f:
        f.write(data)
    os.chmod(partial, mode)  # as asked, whatever the umask
    os.replace(partial, path)
