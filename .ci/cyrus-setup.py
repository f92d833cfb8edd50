"""Create the private Cyrus server's mailboxes over IMAP, as its admin:
`agent` (the connector's own account) and `shared`, which `agent` may read
and write, so agent's JMAP session lists a second, non-personal account.
Messages are not seeded here: each test imports its own, with addresses
unique to the run, so the tests can run again on the same server."""

import imaplib
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
for attempt in range(50):
    try:
        imap = imaplib.IMAP4(host, port)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("Cyrus's IMAP service did not answer")
imap.login("admin", "admin-pw")
for user in ("agent", "shared"):
    typ, data = imap.create(f"user/{user}")
    if typ != "OK" and b"exists" not in b" ".join(data).lower():
        sys.exit(f"cannot create user/{user}: {data!r}")
# `agent` may read, write, delete and expunge in `shared`.
typ, data = imap.setacl("user/shared", "agent", "lrswipkxtecdan")
if typ != "OK":
    sys.exit(f"cannot share user/shared: {data!r}")
imap.logout()
