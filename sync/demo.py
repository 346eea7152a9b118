"""The central-server part of `kiosk demo`: a real server process on a free loopback port,
the kiosk registered with its own device key, its records uploaded, a pass's risk raised
on the server, the signed bundle fetched, and that pass refused on its next scan."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.keys import (BUNDLE_PUB, ISSUER_PUB, load_ed25519_public, raw_public, trusted_issuers,
                        write_private)
from kiosk.reasons import Outcome, Reason
from kiosk.app import Trust
from kiosk.runtime import TrustProvider
from sync.keyring import server_keys_folder
from sync.localserver import LocalServer
from sync.storage import SqliteStorage
from sync.uploader import Uploader


def demo_sync(*, work: Path, keys_dir: Path, store, app, samples, frames_for, say, clock) -> bool:
    from kiosk.demo import ReplaySource, _line

    central = work / "central"
    say("central server:")
    # The server gets the bundle key and public files only: never the authority's private keys.
    server_keys = server_keys_folder(keys_dir, work / "server-keys")
    with LocalServer(central, server_keys) as server:
        say(f"  kiosk-central serve on {server.url} (data {central}, OpenAPI at {server.url}/docs)")
        say(f"  its keys folder {server_keys} holds no private issuer or committee key")
        device_key = Ed25519PrivateKey.generate()
        write_private(work / "device.key", device_key)
        raw = raw_public(device_key.public_key())
        admin = SqliteStorage.in_folder(central)       # what `kiosk-central register-kiosk` does
        kiosk_id = admin.register_kiosk(venue="demo-venue", public_key=raw, now=time.time())
        say(f"  kiosk registered as {kiosk_id} with its own device key")
        uploader = Uploader(store=store, server_url=server.url, kiosk_id=kiosk_id,
                            device_key=device_key, bundle_key=load_ed25519_public(keys_dir / BUNDLE_PUB),
                            bundle_file=work / "bundle.json", batch_size=3)
        first = uploader.round()
        say(f"  sync: {first.summary()}")
        stats = store.stats()
        say(f"  synced {stats['synced']}, pending {stats['pending']}")

        visitor = samples[0]                           # the risk-0 visitor admitted above
        version = admin.set_risk(visitor.pass_id, 3, now=time.time())
        admin.close()
        say(f"  the committee raises the first visitor's pass to level 3 (risk list version {version})")
        second = uploader.round()
        say(f"  sync: {second.summary()}")

        provider = TrustProvider(Trust(issuers=trusted_issuers([keys_dir / ISSUER_PUB])),
                                 bundle_file=work / "bundle.json",
                                 bundle_key=load_ed25519_public(keys_dir / BUNDLE_PUB),
                                 kiosk_id=kiosk_id)
        app.trust = provider
        clock.advance(60.0)                            # a later visit, past the repeat window
        app.source = ReplaySource(frames_for(visitor), clock)
        events = []
        app.on_event = events.append
        app.run()
        refused = [e for e in events if e.decision.outcome is Outcome.DENY
                   and e.decision.reason is Reason.RISK_LIST]
        if refused:
            say(_line(refused[0], f"{visitor.label}: refused on its next scan "
                                  f"(bundle version {provider.bundle.version})"))
        else:
            say(f"  the raised pass was NOT refused: {[e.decision.outcome.value for e in events]}")
        third = uploader.round()
        say(f"  sync: {third.summary()}")
        stats = store.stats()
        on_server = len(SqliteStorage.in_folder(central).record_ids(kiosk_id))
        say(f"  synced {stats['synced']}, pending {stats['pending']}; the server holds "
            f"{on_server} sealed records from this kiosk")
        return (bool(refused) and first.ok and second.ok and third.ok and stats["pending"] == 0
                and on_server == stats["synced"])
