"""What a kiosk trusts, held in one place: the root pinned at install and the successors the
roots named since, the version floors (never lowered: no rollback), the chain of verified
bundles and the risk statements carried over. The door, `kiosk scan --config`, the uploader
and `kiosk doctor` all ask this module, and nothing else keeps a copy of these rules.

Everything lives in the kiosk's own database, under typed keys (:class:`TrustKey`); the
database's verified copy rules. The bundle file beside it is an export for people to read
(`kiosk sync` writes it): a missing, damaged or replaced file changes nothing. Every held link
is verified again, each against the root of its own manifest's version
(:mod:`kiosk.core.roots`), whenever it is used, so a successor root never drops a statement
in force, and a database edited by hand is no more trusted than the wire.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.clock import ClockReference
from kiosk.core.auditheads import AuditHead
from kiosk.core.bundle import (
    Bundle,
    BundleError,
    chain_docs,
    encode_chain,
    prune_tag_keys,
    statement_docs,
    verify_bundle,
    verify_chain,
)
from kiosk.core.roots import RootHistory

log = logging.getLogger(__name__)


class TrustKey(StrEnum):
    """The database's state keys this module owns (their values are the stored names)."""

    COPY = "bundle_verified"  # the chain of bundles that verified, as downloaded
    BUNDLE_FLOOR = "bundle_version_floor"  # the highest risk-list version accepted
    MANIFEST_FLOOR = "manifest_version_floor"  # the highest manifest version accepted
    SUCCESSION = "root_succession"  # JSON: the manifests that named each successor root
    PINNED_ROOT = "root_key_pinned"  # older kiosks: the successor's key alone, without its proof
    CARRIED = "carried_statements"  # JSON: held statements a whole list left out (until expiry)
    AUDIT_HEAD = "audit_head_seen"  # SEQ:HASH, the highest audit head a verified bundle carried
    GENERATION = "bundle_generation"  # counts the writes of COPY: the door reloads on a change
    CLOCK_REF = "clock_reference"  # JSON: the server's signed time at the last bundle (kiosk.clock)


class StateStore(Protocol):
    def get_state(self, key: str, default: str | None = None) -> str | None: ...
    def set_states(self, values: dict[str, str]) -> None: ...


@dataclass(frozen=True)
class Floors:
    bundle: int = 0
    manifest: int = 0


@dataclass(frozen=True)
class Taken:
    """A downloaded bundle, merged into what the kiosk holds and kept."""

    before: Bundle | None
    bundle: Bundle
    data: bytes  # the chain now held
    link: Bundle  # the downloaded link itself (a delta or a whole list)

    @property
    def changed(self) -> bool:
        b, h = self.bundle, self.before
        return (
            h is None
            or b.version != h.version
            or b.manifest_version != h.manifest_version
            or b.tag_keys != h.tag_keys
            or b.roots != h.roots
        )


class HeldTrust:
    """The kiosk's held trust over its state store (``state`` None: nothing held, the
    configuration's keys only). ``root``: the root pinned at install ([keys] root_key)."""

    def __init__(self, state: StateStore | None, *, root: Ed25519PublicKey | None, kiosk_id: str | None):
        self.state, self.root, self.kiosk_id = state, root, kiosk_id or None
        self._cache: tuple[str, Bundle | None] | None = None

    # -- reading -----------------------------------------------------------------------------
    def _get(self, key: TrustKey, default: str | None = None) -> str | None:
        return self.state.get_state(key.value, default) if self.state is not None else default

    def floors(self) -> Floors:
        return Floors(
            int(self._get(TrustKey.BUNDLE_FLOOR, "0") or 0), int(self._get(TrustKey.MANIFEST_FLOOR, "0") or 0)
        )

    def succession(self) -> list[str]:
        return _json_list(self._get(TrustKey.SUCCESSION))

    def carried(self) -> list[str]:
        return _json_list(self._get(TrustKey.CARRIED))

    def history(self) -> RootHistory:
        """The pinned root, then each successor its predecessor named (proofs verified again)."""
        if self.root is None:
            raise BundleError("no root pinned ([keys] root_key): nothing downloaded can be trusted")
        history = RootHistory.pinned(self.root).extend(self.succession())
        legacy = self._get(TrustKey.PINNED_ROOT)
        if legacy and len(history.roots) == 1:  # pinned by an older kiosk, without the proof
            from kiosk.core.bundle import root_of

            successor = root_of(legacy)
            if not history.knows(successor):
                first = self.floors().manifest
                history = RootHistory(history.roots + ((successor, first),), history.proofs)
        return history

    def clock_reference(self) -> ClockReference | None:
        """The server's time as the last bundle taken signed it, carried on the monotonic clock."""
        return ClockReference.parse(self._get(TrustKey.CLOCK_REF))

    def server_now(self) -> float | None:
        ref = self.clock_reference()
        return ref.server_now() if ref else None

    def copy(self) -> str | None:
        """The held chain as stored (what the bundle file exports for people to read)."""
        return self._get(TrustKey.COPY) or None

    def audit_head(self) -> str | None:
        """The highest audit head a verified bundle carried (SEQ:HASH), or None."""
        return self._get(TrustKey.AUDIT_HEAD) or None

    def generation(self) -> str:
        """Changes whenever the held chain is written: cheap to ask once per scan."""
        return self._get(TrustKey.GENERATION, "0") or "0"

    def verify(self, data: bytes, *, carried: list[str] | None = None) -> Bundle:
        """A chain of bundles checked against the history of roots, never below the floors."""
        floors = self.floors()
        return verify_chain(
            data,
            self.history(),
            kiosk_id=self.kiosk_id,
            min_version=floors.bundle,
            min_manifest=floors.manifest,
            carried=self.carried() if carried is None else carried,
        )

    def held(self) -> Bundle | None:
        """The chain the database holds, verified again (None when nothing verifies or nothing
        is held). Cached while the held chain is unchanged."""
        if self.state is None or self.root is None:
            return None
        copy = self._get(TrustKey.COPY)
        key = f"{self.generation()}:{len(copy or '')}:{hash(copy)}"
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        bundle = None
        if copy:
            try:
                bundle = self.verify(copy.encode("ascii"))
            except BundleError as e:
                log.error("the held bundle does not verify (%s): the configuration's keys only", e)
        self._cache = (key, bundle)
        return bundle

    def held_docs(self) -> list[bytes]:
        copy = self._get(TrustKey.COPY)
        return chain_docs(copy.encode("ascii")) if copy else []

    # -- writing -----------------------------------------------------------------------------
    def take(self, content: bytes, *, now: float, extra: dict[str, str] | None = None) -> Taken:
        """Merge a downloaded bundle (a whole list or a delta after the held version) into the
        held chain, verify the result as a whole, and keep it (with the floors raised, the
        successors followed, the carried statements, the highest audit head) in one
        transaction, with ``extra`` state. Raises BundleError, keeping what is held."""
        if self.state is None:
            raise BundleError("no database to keep a bundle in")
        before = self.held()
        floors = self.floors()
        current = max(before.version if before else 0, floors.bundle)
        history = self.history()
        link = verify_bundle(
            content, history, kiosk_id=self.kiosk_id, min_version=current, min_manifest=floors.manifest
        )
        carried = self.carried()
        docs = self.held_docs() if before is not None else []
        if link.risk_since is None:
            if before is not None:  # a whole list replaces the chain: a server may withhold,
                fresh = set(statement_docs(content))  # never take back what the kiosk holds
                held_statements = statement_docs(encode_chain(docs)) if docs else []
                carried = [d for d in held_statements + carried if d not in fresh]
            docs = [content]
        else:
            docs = docs + [content]
        data = encode_chain(docs)
        bundle = verify_chain(
            data,
            history,
            kiosk_id=self.kiosk_id,
            min_version=current,
            min_manifest=floors.manifest,
            carried=carried,
        )
        carried = _unexpired(carried, bundle, now)
        data = prune_tag_keys(data, now)  # no key of a day already over is kept
        roots = bundle.roots or history
        states = {
            TrustKey.CLOCK_REF: ClockReference.taken_now(link.issued_at).wire(),  # signed time
            TrustKey.COPY: data.decode("ascii"),
            TrustKey.CARRIED: json.dumps(carried),
            TrustKey.BUNDLE_FLOOR: str(max(floors.bundle, bundle.version)),
            TrustKey.MANIFEST_FLOOR: str(max(floors.manifest, bundle.manifest_version)),
            TrustKey.SUCCESSION: json.dumps(list(roots.proofs)),
            TrustKey.GENERATION: str(int(self.generation()) + 1),
        }
        if len(roots.roots) > len(history.roots):
            log.warning("the authority's root named its successor: followed from now on")
        if bundle.audit_head is not None:
            seen = self._get(TrustKey.AUDIT_HEAD)
            if not seen or AuditHead.parse(seen).seq < bundle.audit_head.seq:
                states[TrustKey.AUDIT_HEAD] = bundle.audit_head.wire()
        self.state.set_states({**{k.value: v for k, v in states.items()}, **(extra or {})})
        return Taken(before, bundle, data, link)

    def prune(self, *, now: float) -> bool:
        """Drop the search-tag keys of days already over from the held chain. True if any."""
        copy = self._get(TrustKey.COPY)
        if not copy or self.state is None:
            return False
        try:
            pruned = prune_tag_keys(copy.encode("ascii"), now)
        except (BundleError, ValueError):
            return False  # not readable: doctor reports it
        if pruned == copy.encode("ascii"):
            return False
        generation = str(int(self.generation()) + 1)
        self.state.set_states(
            {TrustKey.COPY.value: pruned.decode("ascii"), TrustKey.GENERATION.value: generation}
        )
        return True


def _json_list(text: str | None) -> list[str]:
    try:
        docs = json.loads(text) if text else []
    except ValueError:
        return []
    return [d for d in docs if isinstance(d, str)] if isinstance(docs, list) else []


def _unexpired(docs: list[str], bundle: Bundle, now: float) -> list[str]:
    """The carried statements still worth keeping: signed by a member of the manifest, and not
    expired (an expired one applies nowhere)."""
    from kiosk.core.riskstatements import StatementError, verify_statement

    keep = []
    for d in docs:
        try:
            if verify_statement(d, bundle.manifest.members).expires_at > now:
                keep.append(d)
        except StatementError:
            continue
    return keep


__all__ = ["HeldTrust", "TrustKey", "Floors", "Taken"]
