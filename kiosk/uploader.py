"""The kiosk's uploader: its own process beside `kiosk run` (`kiosk sync`).

One round uploads everything pending, oldest first, in batches, then fetches the bundle,
whether or not the upload went through: the risk list keeps the highest-risk visitors out.
- A record is marked synced only when the server's answer names it (accepted or duplicate).
- Connection errors, timeouts, 5xx, 408 and 429 end the upload; the loop retries later with
  capped exponential backoff and jitter, and never sooner than a Retry-After.
- A batch the server itself calls malformed or too large (a 4xx whose JSON body carries the
  protocol's error code) is split in halves until the one bad record is found; that record
  is set aside (kept, counted, reported by doctor, re-queued by `kiosk sync
  --retry-set-aside`). A 4xx *without* the protocol's code (a proxy's HTML page, a wrong
  URL) says nothing about the records: they stay queued and the round fails loudly.
- An unknown, revoked or mis-signed kiosk keeps everything queued and backs off: that is the
  set-up's fault, not the records'.
- A bundle is used only after its signature checks against the configured authority key;
  a bad one is refused and the old one kept.
The scan loop never waits on any of this: the uploader only reads and updates rows in the
shared SQLite file (WAL, busy timeout).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import NoReturn

import requests

from kiosk.core import protocol
from kiosk.core.bundle import MAX_CHAIN, BundleError, verify_receipt
from kiosk.core.timing import door_time
from kiosk.store.checkins import BAD_RECEIPTS
from kiosk.syncstate import SyncKey
from kiosk.trust import HeldTrust

log = logging.getLogger("kiosk.sync")


class TransientError(Exception):
    """Try again later (network, timeout, 5xx, 429)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class SetupError(Exception):
    """The server refuses this kiosk (unknown, revoked, bad signature, wrong URL): keep the
    records and back off until a technician fixes the set-up."""


WRONG_ROOT_HINT = (
    "the manifest is not signed by the root this kiosk pins: check that [keys] root_key is this "
    "authority's root.pub (`kiosk doctor` names the pinned root)"
)


@dataclass(frozen=True)
class RoundResult:
    accepted: int = 0
    duplicates: int = 0
    set_aside: int = 0
    pending: int = 0
    bundle: str = "not fetched"
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        text = (
            f"uploaded {self.accepted} (duplicates {self.duplicates}), set aside "
            f"{self.set_aside}, pending {self.pending}; bundle {self.bundle}"
        )
        return text + (f"; error: {self.error}" if self.error else "")


@dataclass(frozen=True)
class Backoff:
    base_s: float = 1.0
    max_s: float = 300.0

    def delay(self, failures: int, *, retry_after: float | None = None, rng=random) -> float:
        """Exponential with 'equal jitter' (half fixed, half random: never zero, never in
        lock-step with other kiosks), capped; never sooner than Retry-After (itself capped
        at an hour)."""
        d = min(self.max_s, self.base_s * 2 ** max(0, failures - 1))
        d = d / 2 + rng.uniform(0, d / 2)
        if retry_after is not None:
            d = max(d, min(retry_after, 3600.0))
        return d


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def error_code(resp: requests.Response) -> tuple[str, str]:
    """The protocol's (code, detail) of an error answer; ("", excerpt) when the body is not
    the server's own JSON error (a proxy's page, say)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"], str(body.get("detail", ""))[:200]
    return "", " ".join(resp.text[:120].split())


class Uploader:
    def __init__(
        self,
        *,
        store,
        server_url: str,
        kiosk_id: str,
        device_key,
        root_key=None,
        bundle_file: Path | None = None,
        batch_size: int = 500,
        timeout_s: float = 10.0,
        verify: bool | str = True,
        session: requests.Session | None = None,
        clock=time.time,
        key_margin_days: int = protocol.KEY_MARGIN_DAYS,
        health=None,
    ):
        self.store, self.kiosk_id, self.device_key = store, kiosk_id, device_key
        # () -> the kiosk's health summary (kiosk.health), sent signed with each request
        self.health = health
        self._health_header: str | None = None
        self.key_margin_days = key_margin_days
        self.base = server_url.rstrip("/")
        self.root_key, self.bundle_file = root_key, Path(bundle_file) if bundle_file else None
        self.trust = HeldTrust(store, root=root_key, kiosk_id=kiosk_id)  # what the kiosk trusts
        self._receipt_keys: tuple | None = None  # from the held bundle's manifest
        self.batch_size, self.timeout_s, self.verify, self.clock = batch_size, timeout_s, verify, clock
        self.session = session or requests.Session()
        self.clock_offset = float(store.get_state(SyncKey.SERVER_CLOCK_OFFSET, "0"))
        self.progress = [0, 0, 0]

    # -- one signed request ----------------------------------------------------------------------
    def _request(
        self, method: str, path: str, body: bytes = b"", headers=None, _stale_retry: bool = True
    ) -> requests.Response:
        h = dict(headers or {})
        if self._health_header:
            h[protocol.HEALTH_HEADER] = self._health_header
        head = self.trust.audit_head()
        if head:  # the highest audit head seen, for the committee to check its log against
            h[protocol.AUDIT_HEAD_HEADER] = head
        h.update(
            protocol.sign_request(
                self.device_key,
                kiosk_id=self.kiosk_id,
                method=method,
                path=path,
                timestamp=int(self.clock() + self.clock_offset),
                body=body,
            )
        )
        try:
            resp = self.session.request(
                method,
                self.base + path,
                data=body or None,
                headers=h,
                timeout=self.timeout_s,
                verify=self.verify,
            )
        except requests.exceptions.SSLError as e:
            raise SetupError(
                f"TLS: {e.__class__.__name__} from {self.base} (check ca_bundle / the server certificate)"
            ) from None
        except (
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidURL,
        ):
            raise SetupError(
                f"{self.base}: not a server URL ([sync] server_url: http:// or https:// and a host)"
            ) from None
        except requests.exceptions.ConnectionError as e:
            raise TransientError(
                f"{method} {self.base}{path}: ConnectionError (no answer there: {reason_of(e)})"
            ) from None
        except requests.RequestException as e:
            raise TransientError(f"{method} {self.base}{path}: {e.__class__.__name__}") from None
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            raise TransientError(f"{method} {self.base}{path}: HTTP {resp.status_code}", _retry_after(resp))
        if resp.status_code == 401:
            code, detail = error_code(resp)
            if code == protocol.STALE and _stale_retry:
                # The kiosk's clock is off (a Pi has no RTC): sign with the server's time.
                server_time = float(resp.json().get("server_time", 0))
                self.clock_offset = server_time - self.clock()
                self.store.set_state(SyncKey.SERVER_CLOCK_OFFSET, f"{self.clock_offset:.0f}")
                log.warning("kiosk clock is %.0f s off the server's: correcting requests", -self.clock_offset)
                return self._request(method, path, body, headers, _stale_retry=False)
        if resp.status_code in (401, 403, 404, 405):
            code, detail = error_code(resp)
            raise SetupError(f"{method} {path}: HTTP {resp.status_code} {code or ''} {detail}".strip())
        return resp

    # -- upload ------------------------------------------------------------------------------------
    def now(self) -> float:
        """The time records are judged by here: the server's (as its last signed bundle gives
        it) when this kiosk's clock is far from it, else this kiosk's."""
        return door_time(self.clock(), self.trust.server_now()).record

    def upload_pending(self) -> tuple[int, int, int]:
        """Upload until nothing is pending; returns (accepted, duplicates, set aside). What a
        round did before a failure is still counted in ``self.progress``. A record already
        past its retention is never uploaded (the purge deletes it)."""
        self.progress = [0, 0, 0]
        now = self.now()
        sent = False
        while True:
            records = self.store.pending(self.batch_size, now=now)
            if not records:
                if not sent and self.receipt_keys():
                    # Every round uploads: with nothing to send, an empty batch padded like any
                    # other, so that an upload says nothing about whether anybody came.
                    self._send([])
                return self.progress[0], self.progress[1], self.progress[2]
            sent = True
            for i, n in enumerate(self._send(records)):
                self.progress[i] += n

    def _send(self, records: list[dict]) -> tuple[int, int, int]:
        batch_id = str(uuid.uuid4())
        body = protocol.encode_batch(
            batch_id,
            [{k: r[k] for k in protocol.RECORD_FIELDS} for r in records],
        )
        resp = self._request(
            "POST",
            protocol.UPLOAD_PATH,
            body,
            # identity: the answer is padded to its size bucket; compressed, it would not be
            {"Content-Type": "application/json", "Content-Encoding": "gzip", "Accept-Encoding": "identity"},
        )
        if resp.status_code == 200:
            try:
                answer = resp.json()
                accepted, duplicates = list(answer["accepted"]), list(answer["duplicates"])
                receipt = answer["receipt"]
            except (ValueError, KeyError, TypeError):
                self._bad_receipt("an answer without a receipt")
            keys = self.receipt_keys()
            if not keys:
                raise SetupError(
                    "upload: no verified manifest held yet, so no receipt can be checked; "
                    "records stay queued until the bundle is fetched"
                )
            try:
                stored = set(verify_receipt(receipt, keys, kiosk_id=self.kiosk_id, batch_id=batch_id))
            except BundleError as e:
                self._bad_receipt(str(e))
            sent = {r["record_id"] for r in records}
            named = [i for i in accepted + duplicates if i in sent and i in stored]
            if records and not named:
                self._bad_receipt("the receipt names none of the batch")
            self.store.set_state(BAD_RECEIPTS, "0")
            self.store.mark_synced(named, now=self.clock())
            return (len([i for i in accepted if i in named]), len([i for i in duplicates if i in named]), 0)
        code, detail = error_code(resp)
        if not code:
            raise SetupError(
                f"upload: HTTP {resp.status_code} without the protocol's error code "
                f"(a proxy or a wrong server_url?): {detail}; records stay queued"
            )
        if resp.status_code in (400, 409, 413, 422) and code in protocol.PERMANENT:
            if len(records) > 1:  # find the bad record(s); the rest go through
                half = len(records) // 2
                first, second = self._send(records[:half]), self._send(records[half:])
                return first[0] + second[0], first[1] + second[1], first[2] + second[2]
            reason = f"HTTP {resp.status_code} {code}: {detail}"[:200]
            self.store.set_aside([records[0]["record_id"]], reason=reason, now=self.clock())
            log.error(
                "upload: the server refused record seq %d for good (%s); set aside",
                records[0]["seq"],
                code or resp.status_code,
            )
            return (0, 0, 1)
        raise SetupError(f"upload: HTTP {resp.status_code} {code} {detail}".strip())

    def _bad_receipt(self, why: str) -> NoReturn:
        """A 200 without a receipt the manifest's receipt key signed: nothing is marked
        synced (a forged answer cannot make the kiosk delete records it still needs)."""
        n = int(self.store.get_state(BAD_RECEIPTS, "0") or 0) + 1
        self.store.set_state(BAD_RECEIPTS, str(n))
        raise TransientError(f"upload: receipt refused ({why}); records stay queued ({n} in a row)")

    def receipt_keys(self) -> tuple:
        if self._receipt_keys is None:
            held = self._held_bundle()
            self._receipt_keys = held.receipt_keys if held else ()
        return self._receipt_keys

    def _held_bundle(self):
        return self.trust.held() if self.root_key is not None else None

    # -- bundle ------------------------------------------------------------------------------------
    def fetch_bundle(self) -> str:
        if self.root_key is None or self.bundle_file is None:
            return "not configured"
        held = self._held_bundle()
        docs = self.trust.held_docs() if held else []
        headers = {protocol.KEY_MARGIN_HEADER: str(self.key_margin_days)}
        etag = self.store.get_state(SyncKey.BUNDLE_ETAG)
        if held and etag and not self.store.unconfirmed():  # (what the server holds, asked afresh)
            headers["If-None-Match"] = etag
        if held and len(docs) < MAX_CHAIN:  # only the changes, not the whole list
            headers[protocol.RISK_SINCE_HEADER] = str(held.version)
        asked_at = self.clock()
        resp = self._request("GET", protocol.BUNDLE_PATH, headers=headers)
        now = self.clock()
        if resp.status_code == 304:
            self.store.set_state(SyncKey.BUNDLE_CHECKED_AT, f"{now:.3f}")
            self._export()
            return f"unchanged (version {self.store.get_state(SyncKey.BUNDLE_VERSION, '?')})"
        if resp.status_code != 200:
            raise SetupError(f"bundle: HTTP {resp.status_code}")
        try:
            taken = self.trust.take(
                resp.content,
                now=now,
                extra={
                    SyncKey.BUNDLE_ETAG: resp.headers.get("ETag", ""),
                    SyncKey.BUNDLE_CHECKED_AT: f"{now:.3f}",
                    SyncKey.BUNDLE_ERROR: "",
                },
            )
        except BundleError as e:
            self.store.set_states({SyncKey.BUNDLE_ERROR: str(e), SyncKey.BUNDLE_ETAG: ""})  # whole next time
            current = max(held.version if held else 0, self.trust.floors().bundle)
            hint = f": {WRONG_ROOT_HINT}" if str(e).startswith("manifest refused") else ""
            # (said once, by the round's result: `kiosk sync` prints it, the service logs it)
            return f"refused ({e}); kept version {current or 'none'}{hint}"
        bundle, link = taken.bundle, taken.link
        self._receipt_keys = bundle.receipt_keys
        # What the server holds (signed by its bundle key): those uploaded records may now leave
        # the kiosk; ones acknowledged earlier that it does not hold go back in the queue.
        _, again = self.store.confirm(link.stored, now=now, sent_before=asked_at)
        if again:
            log.warning("%d records acknowledged earlier are not on the server: queued again", again)
        self.store.set_states(
            {SyncKey.BUNDLE_VERSION: str(bundle.version), SyncKey.BUNDLE_ISSUED_AT: f"{bundle.issued_at:.3f}"}
        )
        self._export()
        log.info(
            "bundle version %d: %d issuer keys, %d risk-list entries (%s)",
            bundle.version,
            len(bundle.issuers),
            len(bundle.risk_list.levels),
            f"a delta of {len(link.statements)} statements" if link.risk_since is not None else "whole",
        )
        if not taken.changed:
            return f"unchanged (version {bundle.version})"
        return f"updated to version {bundle.version}: {what_changed(taken.before, bundle)}"

    def _export(self) -> None:
        """The held chain, written to the bundle file for people to read (never trusted)."""
        copy = self.trust.copy()
        if self.bundle_file is None or not copy:
            return
        try:
            if self.bundle_file.read_bytes() == copy.encode("ascii"):
                return
        except OSError:
            pass
        try:
            _write_atomically(self.bundle_file, copy.encode("ascii"))
        except OSError as e:
            log.warning(
                "the bundle file %s was not written (%s): the database holds the bundle",
                self.bundle_file,
                e.strerror,
            )

    # -- what the server heard -----------------------------------------------------------------------
    def heard(self) -> dict:
        """What the server last heard from this kiosk (GET /v1/kiosk); the request carries
        the kiosk's health as it is now, so the server's view is the state after the round."""
        resp = self._request("GET", protocol.KIOSK_PATH)
        if resp.status_code != 200:
            raise SetupError(f"GET {protocol.KIOSK_PATH}: HTTP {resp.status_code}")
        try:
            answer = resp.json()
        except ValueError:
            raise SetupError(f"GET {protocol.KIOSK_PATH}: not the server's answer (a proxy?)") from None
        if not isinstance(answer, dict) or answer.get("kiosk_id") != self.kiosk_id:
            raise SetupError(f"GET {protocol.KIOSK_PATH}: not an answer about this kiosk")
        return answer

    def _health_now(self) -> None:
        if self.health is None:
            return
        try:  # what this round reports of the kiosk; a failure here never stops a sync
            from kiosk.health import later_than_sent

            summary = later_than_sent(self.store, self.health())
            self._health_header = protocol.sign_health(self.device_key, self.kiosk_id, summary)
        except Exception as e:
            log.warning("health summary not made: %s", type(e).__name__)
            self._health_header = None

    # -- rounds and the service ---------------------------------------------------------------------
    def round(self, *, upload: bool = True) -> RoundResult:
        """Upload (unless ``upload`` is false: the sync service uploads on a fixed schedule),
        then fetch the bundle even when the upload failed."""
        errors, retry_after = [], None
        # A day's search-tag key goes when its day is over, offline too (not at the next purge)
        if self.trust.prune(now=self.clock()):
            self._export()
        self._health_now()
        first = None
        if not self.receipt_keys() and self.root_key is not None:
            try:  # receipts are checked with the manifest's key: fetch it first
                first = self.fetch_bundle()  # (it keeps the new manifest's receipt keys)
            except (TransientError, SetupError):
                pass
        refused = first is not None and first.startswith("refused")
        trusted = self.trust.server_now()
        if trusted is not None:  # set aside for a clock that was wrong then, and is right now
            from kiosk.core.timing import DAY, REQUEST_SKEW_S

            back = self.store.requeue_clock_set_aside(
                now=trusted, code=protocol.BAD_CAPTURE_TIME, future_s=3600 - REQUEST_SKEW_S, oldest_s=89 * DAY
            )
            if back:
                log.warning(
                    "%d records set aside for a wrong clock are queued again: the clock is right now", back
                )
        if not refused and upload:  # (with no manifest held, no receipt could be checked)
            try:
                self.upload_pending()  # counts into self.progress, even if it fails
            except (TransientError, SetupError) as e:
                errors.append(str(e))
                retry_after = getattr(e, "retry_after", None)
        try:
            bundle = first if refused and first else self.fetch_bundle()
            if first and first.startswith("updated") and bundle.startswith("unchanged"):
                bundle = first  # what this round changed
            if bundle.startswith("refused"):  # a round whose bundle is refused has failed
                errors.append(f"bundle {bundle}")
                bundle = "refused (the one held is kept)"
        except (TransientError, SetupError) as e:
            bundle = "not fetched"
            errors.append(str(e))
            retry_after = max(
                (r for r in (retry_after, getattr(e, "retry_after", None)) if r is not None), default=None
            )
        if self.health is not None and bundle != "not fetched":  # the server answered this round
            self._health_now()  # the state after this round, for `kiosk-central status`
            try:
                self.heard()
            except (TransientError, SetupError) as e:
                log.info("health after the round not reported: %s", e)
        error = "; ".join(errors) or None
        if error:
            self.store.set_states(
                {SyncKey.LAST_SYNC_ERROR: error[:300], SyncKey.LAST_SYNC_ERROR_AT: f"{self.clock():.3f}"}
            )
        else:
            self.store.set_states({SyncKey.LAST_SYNC_AT: f"{self.clock():.3f}", SyncKey.LAST_SYNC_ERROR: ""})
        accepted, duplicates, set_aside = self.progress
        return RoundResult(
            accepted, duplicates, set_aside, self.store.stats()["pending"], bundle, error, retry_after
        )

    def loop(
        self,
        stop: threading.Event,
        *,
        interval_s: float,
        backoff: Backoff,
        on_round=None,
        upload_every_s: float = protocol.UPLOAD_EVERY_S,
    ) -> None:
        """Rounds every ``interval_s`` (the bundle, the health); uploads on a fixed schedule,
        the first round of each slot (5 minutes), whether anybody came or not (an empty batch
        then): neither an upload's size nor its time says whether anybody came."""
        failures = 0
        uploaded_slot = None
        while not stop.is_set():
            slot = int(self.clock() // upload_every_s)
            result = self.round(upload=slot != uploaded_slot)
            if result.ok:
                uploaded_slot = slot
            if on_round:
                on_round(result)
            if result.ok:
                failures = 0
                log.info("sync: %s", result.summary())
                delay = interval_s
            else:
                failures += 1
                delay = backoff.delay(failures, retry_after=result.retry_after)
                log.warning(
                    "sync failed (%d in a row): %s; next try in %.1f s", failures, result.error, delay
                )
            stop.wait(delay)


def what_changed(held, bundle) -> str:
    """What a new bundle changed for this kiosk, in words (its first one: what it holds)."""
    if held is None:
        return (
            f"first bundle: manifest {bundle.manifest_version}, {len(bundle.issuers)} issuer keys, "
            f"{len(bundle.risk_list.levels)} risk-list entries, search-tag keys for "
            f"{len(bundle.tag_keys)} days"
        )
    parts = []
    before, after = held.risk_list.levels, bundle.risk_list.levels
    added = sum(1 for r in after if r not in before)
    removed = sum(1 for r in before if r not in after)
    changed = sum(1 for r in after if r in before and before[r] != after[r])
    if added or removed or changed:
        parts.append(f"risk list +{added} -{removed} entries, {changed} changed level ({len(after)} in all)")
    if bundle.manifest_version != held.manifest_version:
        parts.append(f"manifest {held.manifest_version} -> {bundle.manifest_version}")
    new_days = len({k.valid_from for k in bundle.tag_keys} - {k.valid_from for k in held.tag_keys})
    if new_days:
        parts.append(f"search-tag keys for {new_days} more day(s)")
    return "; ".join(parts) or f"version {held.version} -> {bundle.version}, nothing new for this kiosk"


def reason_of(e: BaseException) -> str:
    """The innermost cause's words, without a raw "[Errno 111]": "Connection refused"."""
    import re

    while e.__context__ is not None or e.__cause__ is not None:
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    text = str(e.args[-1] if e.args else e)
    text = re.sub(r"\[Errno -?\d+\] ?", "", text)
    return text.split(": ", 1)[-1][:80] if "Errno" not in text else "no answer"


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def uploader_from_config(cfg, *, store=None, session=None) -> Uploader:
    """The uploader a kiosk's config describes; ConfigError names the key at fault."""
    from kiosk.compose import load_root_key, open_store
    from kiosk.config import ConfigError
    from kiosk.core.keys import KeyFileError, load_ed25519_private

    s = cfg.sync
    if not s.server_url:
        raise ConfigError("[sync] server_url: not set (this kiosk is configured offline)")
    if not s.kiosk_id:
        raise ConfigError("[sync] kiosk_id: not set (register the kiosk: kiosk-central register-kiosk)")
    try:
        device_key = load_ed25519_private(cfg.keys.device_key)
    except KeyFileError as e:
        raise ConfigError(f"[keys] device_key: {e} (make it with `kiosk keys init`)") from None
    root_key = load_root_key(cfg)
    if root_key is None:
        raise ConfigError(
            "[keys] root_key: not set: bundles and upload receipts are trusted through the authority's "
            'offline root key (kiosk-central keys init makes root.pub): set root_key = "keys/root.pub"'
            + ("; bundle_key is no longer used" if cfg.keys.bundle_key else "")
        )
    verify: bool | str = s.ca_bundle or s.verify_tls
    store = store or open_store(cfg)

    def health() -> dict:
        from kiosk.clock import SystemClock
        from kiosk.config import releases_dir
        from kiosk.core.console import version
        from kiosk.health import collect_health, read_status

        trust = HeldTrust(store, root=None, kiosk_id=None)
        return collect_health(
            store,
            now=time.time() + uploader.clock_offset,  # the time its requests are signed with
            manifest_version=trust.floors().manifest or None,
            audit_head=trust.audit_head(),
            db_folder=Path(cfg.kiosk.database).parent,
            clock_synced=SystemClock().synced(),
            clock_offset=uploader.clock_offset,
            version=version(),
            update=read_status(releases_dir(cfg)).get("status"),
        )

    uploader = Uploader(
        store=store,
        server_url=s.server_url,
        kiosk_id=s.kiosk_id,
        device_key=device_key,
        root_key=root_key,
        bundle_file=Path(cfg.kiosk.bundle_file) if cfg.kiosk.bundle_file else None,
        batch_size=s.batch_size,
        timeout_s=s.timeout_s,
        verify=verify,
        session=session,
        key_margin_days=s.key_margin_days,
        health=health,
    )
    return uploader
