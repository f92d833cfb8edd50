#!/usr/bin/env python3
"""Check oubli's audit-log proofs without oubli: docs/AUDIT.md says what
each step means. Needs Python 3.8+ and `cryptography` only.

  verify-proof.py certificate CERT.json [--proof P] [--key PEM]
      An erasure or retention certificate as `oubli certificate fetch` or
      `oubli retention certificate` wrote it (CERT.json, CERT.json.sig,
      CERT.json.pub.pem, CERT.json.proof.json): the certificate's signature,
      that the proof's event attests exactly this document, that the event
      is in the log under the signed tree head, and the head's signature.

  verify-proof.py heads HEADS.jsonl --key PEM [--since HEAD.json]
      Signed tree heads as `oubli audit heads` prints them, oldest first:
      each head's signature, and each consistency proof from the head
      before it (or from the witness's HEAD.json with --since).

Exit status 0 when everything holds, 1 (with the reason) when not.
"""

import argparse
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def field(value):
    """0x00 when absent; 0x01, the length (8 bytes, big-endian), the bytes."""
    if value is None:
        return b"\x00"
    return b"\x01" + struct.pack(">Q", len(value)) + value


def text(value):
    return None if value is None else value.encode("utf-8")


def leaf_bytes(event):
    """The bytes of an event's leaf: docs/AUDIT.md, "Leaves"."""
    reason = event.get("reason_sha256")
    return b"oubli-audit-leaf/1" + b"".join(
        [
            field(text(event["request_id"])),
            field(struct.pack(">q", event["at"])),
            field(text(event["actor"])),
            field(text(event["action"])),
            field(text(event.get("from"))),
            field(text(event.get("to"))),
            field(text(event.get("system"))),
            field(None if reason is None else bytes.fromhex(reason)),
            field(text(event.get("digest"))),
        ]
    )


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162, 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162, 2.1.4.2."""
    if first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def pss_ok(key, message, signature):
    try:
        key.verify(
            signature,
            message,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256(),
        )
        return True
    except InvalidSignature:
        return False


def head_ok(key, head):
    message = "oubli-tree-head/1\n{}\n{}\n{}\n".format(
        head["size"], head["root"], head["signed_at"]
    ).encode("ascii")
    return pss_ok(key, message, bytes.fromhex(head["signature"]))


def unhex32(value):
    raw = bytes.fromhex(value)
    if len(raw) != 32:
        raise ValueError("not a SHA-256 value")
    return raw


def fail(why):
    print("INVALID: " + why)
    return 1


def certificate(args):
    with open(args.certificate, "rb") as f:
        document = f.read()
    with open(args.proof or args.certificate + ".proof.json") as f:
        proof = json.load(f)
    with open(args.key or args.certificate + ".pub.pem", "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    with open(args.certificate + ".sig", "rb") as f:
        signature = f.read()
    if not pss_ok(key, document, signature):
        return fail("the certificate's signature does not verify")
    if proof.get("format") != "oubli-inclusion-proof/1":
        return fail("not an oubli inclusion proof")
    event = proof["event"]
    if event.get("digest") != hashlib.sha256(document).hexdigest():
        return fail("the proof's event attests another document")
    leaf = leaf_hash(leaf_bytes(event))
    if leaf.hex() != proof["leaf_hash"]:
        return fail("the event's fields do not give the proof's leaf hash")
    head = proof["head"]
    path = [unhex32(p) for p in proof["path"]]
    if not verify_inclusion(
        proof["leaf_index"], head["size"], leaf, path, unhex32(head["root"])
    ):
        return fail("the audit path does not lead to the head's root")
    if not head_ok(key, head):
        return fail("the tree head's signature does not verify")
    print(
        "ok: the certificate is signed, and its issue is event {} of the audit log "
        "under the tree head of {} events signed at {}".format(
            proof["leaf_index"], head["size"], head["signed_at"]
        )
    )
    return 0


def heads(args):
    with open(args.key, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    previous = None
    if args.since:
        with open(args.since) as f:
            line = json.load(f)
        previous = line.get("head", line)
        if not head_ok(key, previous):
            return fail("the witness's own head does not verify")
    count = 0
    with open(args.heads) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            head = item["head"]
            if not head_ok(key, head):
                return fail("line {}: the head's signature does not verify".format(number))
            if previous is not None:
                proof = item.get("consistency") or {}
                if (
                    proof.get("from_size") != previous["size"]
                    or proof.get("to_size") != head["size"]
                ):
                    return fail(
                        "line {}: its consistency proof is not from the head before".format(number)
                    )
                if not verify_consistency(
                    previous["size"],
                    head["size"],
                    unhex32(previous["root"]),
                    unhex32(head["root"]),
                    [unhex32(p) for p in proof.get("path", [])],
                ):
                    return fail(
                        "line {}: the log of {} events is not an extension of the one of {}".format(
                            number, head["size"], previous["size"]
                        )
                    )
            previous = head
            count += 1
    print("ok: {} signed tree heads, each consistent with the one before".format(count))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("certificate")
    c.add_argument("certificate")
    c.add_argument("--proof")
    c.add_argument("--key")
    h = sub.add_parser("heads")
    h.add_argument("heads")
    h.add_argument("--key", required=True)
    h.add_argument("--since")
    args = parser.parse_args()
    try:
        return certificate(args) if args.command == "certificate" else heads(args)
    except (KeyError, ValueError, TypeError) as e:
        return fail("malformed input ({})".format(type(e).__name__))


if __name__ == "__main__":
    sys.exit(main())
