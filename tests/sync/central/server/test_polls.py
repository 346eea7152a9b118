"""A bundle poll answered from one read (issue 34): a 304 exactly while nothing its bundle is
made of changed, a new bundle as soon as something did (an upload of its own, a manifest, the
audit log, a revocation), and what the poll tells of the kiosk written after the answer."""

import gzip
import json
import time
import uuid

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core import protocol
from kiosk.core.keys import raw_public
from sync.central.storage.sqlite_backend import SqliteStorage
from workbench.localserver import LocalServer
from workbench.world import publish_manifest


def poll(srv, kid, key, etag=None, headers=None):
    h = protocol.sign_request(
        key, kiosk_id=kid, method="GET", path=protocol.BUNDLE_PATH, timestamp=int(time.time()), body=b""
    )
    if etag:
        h["If-None-Match"] = etag
    return requests.get(srv.url + protocol.BUNDLE_PATH, headers={**h, **(headers or {})}, timeout=10)


def upload(srv, kid, key, seq):
    body = gzip.compress(
        json.dumps(
            {
                "batch_id": str(uuid.uuid4()),
                "records": [
                    {
                        "record_id": str(uuid.uuid4()),
                        "seq": seq,
                        "captured_at": time.time() - 5,
                        "clock_synced": True,
                        "sealed": "eHh4eA==",
                    }
                ],
            }
        ).encode()
    )
    h = protocol.sign_request(
        key, kiosk_id=kid, method="POST", path=protocol.UPLOAD_PATH, timestamp=int(time.time()), body=body
    )
    return requests.post(srv.url + protocol.UPLOAD_PATH, data=body, headers={**h, "Content-Encoding": "gzip"})


def test_a_poll_is_304_until_what_its_bundle_is_made_of_changes(tmp_path, server_keys, authority):
    with LocalServer(tmp_path / "central", server_keys) as srv:
        s = SqliteStorage.in_folder(srv.data_dir)
        key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        kid = s.register_kiosk(venue="v", public_key=raw_public(key.public_key()), now=0)
        kid2 = s.register_kiosk(venue="w", public_key=raw_public(other.public_key()), now=0)
        assert poll(srv, kid, key).status_code == 503  # no manifest yet: said, not a 304
        publish_manifest(authority, s, now=time.time())
        first = poll(srv, kid, key)
        etag = first.headers["ETag"]
        assert first.status_code == 200 and poll(srv, kid, key, etag).status_code == 304
        assert poll(srv, kid, key, '"1-nothing"').status_code == 200  # not the one it holds
        # another kiosk's upload changes nothing of this one's bundle; its own does
        assert upload(srv, kid2, other, 1).status_code == 200
        assert poll(srv, kid, key, etag).status_code == 304
        assert upload(srv, kid, key, 1).status_code == 200
        after = poll(srv, kid, key, etag)
        assert after.status_code == 200 and after.headers["ETag"] != etag
        etag = after.headers["ETag"]
        publish_manifest(authority, s, now=time.time())  # a new manifest: every bundle changes
        renewed = poll(srv, kid, key, etag)
        assert renewed.status_code == 200 and renewed.headers["ETag"] != etag
        etag = renewed.headers["ETag"]
        assert poll(srv, kid, key, etag).status_code == 304
        # a poll signed with another key is refused whatever ETag it holds
        assert poll(srv, kid, other, etag).status_code == 401
        # revoked: refused at once, whatever ETag it holds
        s.revoke_kiosk(kid, now=time.time())
        refused = poll(srv, kid, key, etag)
        assert refused.status_code == 403 and refused.json()["error"] == "revoked"
        s.close()


def test_what_a_poll_tells_of_the_kiosk_is_written_after_the_answer(tmp_path, server_keys, authority):
    with LocalServer(tmp_path / "central", server_keys) as srv:
        s = SqliteStorage.in_folder(srv.data_dir)
        key = Ed25519PrivateKey.generate()
        kid = s.register_kiosk(venue="v", public_key=raw_public(key.public_key()), now=0)
        publish_manifest(authority, s, now=time.time())
        head = f"1:{'a' * 64}"
        assert poll(srv, kid, key, headers={protocol.AUDIT_HEAD_HEADER: head}).status_code == 200
        deadline = time.monotonic() + 10
        seen = "SELECT seen_at FROM kiosk_health WHERE kiosk_id = ?"
        while time.monotonic() < deadline and not (s.witnessed_heads() and s._q(seen, [kid])):
            time.sleep(0.05)
        assert [(w.kiosk_id, w.seq) for w in s.witnessed_heads()] == [(kid, 1)]
        assert s._q(seen, [kid])
        s.close()
