#!/usr/bin/env python3
"""Decrypt an oubli encrypted file (format version 1) with Python's
`cryptography` package alone, to show the format is open.

    pip install cryptography
    python3 docs/decrypt.py --key private.pem [--passphrase-env VAR] IN OUT

The format is specified in docs/FORMAT.md. The plaintext is written to a
temporary file beside OUT and renamed only when the whole file authenticated.
"""

import argparse
import hashlib
import hmac
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"oubliENC"
CHUNK = 16384
TAG = 16
LABEL = b"c2sp.org/chunked-encryption@v1+"
AEAD = b"AEAD_AES_256_GCM"


class FormatError(Exception):
    pass


def take(f, n, raw):
    data = f.read(n)
    if len(data) != n:
        raise FormatError("truncated header")
    raw.extend(data)
    return data


def read_header(f):
    raw = bytearray()
    if take(f, 8, raw) != MAGIC:
        raise FormatError("not an oubli encrypted file")
    version = take(f, 1, raw)[0]
    if version != 1:
        raise FormatError(f"unsupported version {version}")
    kind = take(f, take(f, 1, raw)[0], raw).decode("ascii")
    request_id = take(f, take(f, 1, raw)[0], raw).decode("ascii")
    recipients = []
    for _ in range(take(f, 1, raw)[0]):
        key_id = take(f, 8, raw).hex()
        length = int.from_bytes(take(f, 2, raw), "big")
        recipients.append((key_id, take(f, length, raw)))
    return kind, request_id, recipients, bytes(raw)


def hkdf_expand_sha512(prk, info, length):
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha512).digest()
        out += block
        counter += 1
    return out[:length]


def decrypt(private_key, src, dst):
    kind, request_id, recipients, header = read_header(src)
    spki = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id = hashlib.sha256(spki).digest()[:8].hex()
    wrapped = dict(recipients).get(key_id)
    if wrapped is None:
        raise FormatError(f"key {key_id} is not among the recipients")
    file_key = private_key.decrypt(
        wrapped,
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()),
            algorithm=hashes.SHA256(),
            label=None,
        ),
    )
    salt = src.read(24)
    commitment = src.read(32)
    if len(salt) != 24 or len(commitment) != 32:
        raise FormatError("truncated body")
    okm = hkdf_expand_sha512(file_key, LABEL + AEAD + b"\x00" + salt + header, 76)
    key, base_nonce, expected = okm[:32], okm[32:44], okm[44:]
    if not hmac.compare_digest(commitment, expected):
        raise FormatError("wrong key or context")
    aead = AESGCM(key)
    counter = 0
    while True:
        chunk = src.read(CHUNK + TAG)
        if len(chunk) < TAG:
            raise FormatError("truncated body")
        nonce = bytes(a ^ b for a, b in zip(base_nonce, counter.to_bytes(12, "big")))
        dst.write(aead.decrypt(nonce, chunk, None))
        counter += 1
        if len(chunk) < CHUNK + TAG:
            return kind, request_id


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--key", required=True, help="recipient private key, PKCS#8 PEM")
    p.add_argument("--passphrase-env", help="environment variable holding the key's passphrase")
    p.add_argument("input")
    p.add_argument("output")
    a = p.parse_args()
    password = os.environ[a.passphrase_env].encode() if a.passphrase_env else None
    with open(a.key, "rb") as f:
        private_key = serialization.load_pem_private_key(f.read(), password=password)
    tmp = a.output + ".partial"
    try:
        with open(a.input, "rb") as src, open(tmp, "wb") as dst:
            kind, request_id = decrypt(private_key, src, dst)
        os.replace(tmp, a.output)
    except Exception as e:  # noqa: BLE001 - one line, no plaintext left behind
        if os.path.exists(tmp):
            os.remove(tmp)
        print(f"decrypt.py: {e or type(e).__name__}", file=sys.stderr)
        sys.exit(1)
    print(f"decrypted {kind} of request {request_id or '-'}")


if __name__ == "__main__":
    main()
