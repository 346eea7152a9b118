"""`kiosk update`: the kiosk updates its own software from releases the committee signed
offline, through The Update Framework's reference client (python-tuf's ngclient).

One round: trust the TUF root only if the authority's root the installer carried signed it
and is its root key (never a root from the network alone); refresh the metadata (ngclient
refuses a bad signature, a rollback of any metadata, and metadata past its expiry: freeze
protection); take ``release.json`` (the version and the rollout, signed offline); skip it
unless it is newer than what runs (rollback protection), meant for this kiosk, and not one
that failed here before; download only the files not installed already, each checked
against the signed length and hash, within the size limit; install them side by side
(``RELEASES/VERSION``, never over the running one); at a quiet moment (no check-in for a
while: the door keeps working until then, and a restart takes seconds) switch the
``current`` link atomically and restart the services; check the new one's health (doctor,
and the real decoder on a test code); and go back to the previous one on its own when it is
not healthy within the set time. What happened is kept, and the next sync's signed health
summary tells the server.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from kiosk.config import Config, ConfigError, releases_dir
from kiosk.core.faults import EXIT_CHECK_FAILED, Fault
from kiosk.core.releasefiles import (
    RELEASE_FILE,
    UPDATES_PATH,
    Release,
    ReleaseError,
    read_release,
    target_path,
)
from kiosk.core.releasefiles import version_key as vkey
from kiosk.health import read_status, status_path

log = logging.getLogger("kiosk")
SELFTEST_TEXT = "KIOSK-SELFTEST"


class UpdateFault(Fault):
    label = "update"
    exit_code = EXIT_CHECK_FAILED


@dataclass(frozen=True)
class Outcome:
    state: str  # current, none, not_for_this_kiosk, available, installed, rolled_back, refused
    version: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.state not in ("rolled_back", "refused")

    def line(self) -> str:
        what = self.state.replace("_", " ") + (f" {self.version}" if self.version else "")
        return f"{what}: {self.detail}"


def running_version(cfg: Config) -> str:
    """The version the kiosk's services run: the release ``current`` links to, else this
    install's own (the updater itself always runs from the base install, so its own version
    is not what runs once a release is installed)."""
    from kiosk.core.console import version

    link = releases_dir(cfg) / "current"
    if link.is_symlink():
        target = os.readlink(link)
        try:
            vkey(target)
            return target
        except ReleaseError:
            pass  # "base": the install itself
    return version()


class _Fetcher:
    """ngclient's network through requests, with the kiosk's TLS settings and timeout. A
    release's file interrupted on the way is resumed where it stopped (an HTTP range) at the
    next round, from what ``partial`` holds; ngclient checks the whole against its signed
    length and hash either way."""

    def __new__(cls, session: requests.Session, *, verify: bool | str, timeout: float, partial: Path) -> Any:
        import hashlib

        from tuf.api.exceptions import DownloadHTTPError
        from tuf.ngclient.fetcher import FetcherInterface

        class Fetcher(FetcherInterface):
            def _fetch(self, url: str) -> Iterator[bytes]:
                kept = partial / hashlib.sha256(url.encode()).hexdigest()[:32]
                resume = "/targets/" in url and kept.exists() and kept.stat().st_size > 0
                headers = {"Range": f"bytes={kept.stat().st_size}-"} if resume else {}
                resp = session.get(url, stream=True, timeout=timeout, verify=verify, headers=headers)
                if resp.status_code not in (200, 206) or (resp.status_code == 206 and not resume):
                    resp.close()
                    raise DownloadHTTPError(f"HTTP {resp.status_code} for {url}", resp.status_code)
                if "/targets/" not in url:
                    return resp.iter_content(64 * 1024)
                return self._kept(resp, kept, resumed=resp.status_code == 206)

            @staticmethod
            def _kept(resp: requests.Response, kept: Path, *, resumed: bool) -> Iterator[bytes]:
                kept.parent.mkdir(parents=True, exist_ok=True)
                if resumed:
                    yield kept.read_bytes()  # what came before the interruption
                with open(kept, "ab" if resumed else "wb") as f:
                    for chunk in resp.iter_content(64 * 1024):
                        f.write(chunk)
                        f.flush()
                        yield chunk
                kept.unlink(missing_ok=True)  # whole: checked by ngclient; nothing to resume

        return Fetcher()


def _trusted_root(cfg: Config, meta_dir: Path, fetcher: Any) -> bool:
    """The first TUF root, kept only if it names the pinned root key for its root role and
    that key signed it; ngclient follows later root versions from there itself. False when
    the server has none (nothing was ever published)."""
    from securesystemslib.signer import SSlibKey
    from tuf.api.exceptions import DownloadHTTPError
    from tuf.api.metadata import Metadata, Root

    from kiosk.compose import load_root_key

    if (meta_dir / "root.json").exists():
        return True
    pinned = load_root_key(cfg)
    if pinned is None:
        raise ConfigError("[keys] root_key: not set: releases are trusted through the authority's root")
    url = cfg.sync.server_url.rstrip("/") + UPDATES_PATH + "/1.root.json"
    try:
        data = b"".join(fetcher.fetch(url))
    except DownloadHTTPError as e:
        if e.status_code == 404:
            return False
        raise
    try:
        md = Metadata[Root].from_bytes(data)
        key = SSlibKey.from_crypto(pinned)
        if md.signed.roles[Root.type].keyids != [key.keyid]:
            raise ValueError("its root role is not the pinned root key")
        md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
    except Exception as e:
        raise UpdateFault(
            f"the release root from the server is not the authority's root this kiosk carries ({e}): refused"
        ) from None
    meta_dir.mkdir(parents=True, exist_ok=True)
    (meta_dir / "root.json").write_bytes(data)
    return True


def _installed(name: str) -> bool:
    """A dependency's wheel whose distribution and version run here already."""
    from importlib.metadata import PackageNotFoundError, version

    parts = name[: -len(".whl")].split("-")
    if len(parts) < 5:
        return False
    try:
        return version(parts[0]) == parts[1]
    except PackageNotFoundError:
        return False


def _quiet(cfg: Config, *, clock: Callable[[], float], sleep: Callable[[float], None]) -> bool:
    """Wait until the door has written nothing for ``quiet_s`` (at most ``quiet_wait_s``):
    every check-in and invalid scan is a commit, so the database's and its WAL's times say
    when someone was last at the door, without opening it (the updater may run as root; the
    database stays the kiosk user's). True when quiet."""
    db = Path(cfg.kiosk.database)
    deadline = clock() + cfg.update.quiet_wait_s
    while True:
        times = [p.stat().st_mtime for p in (db, db.with_name(db.name + "-wal")) if p.exists()]
        if not times or clock() - max(times) >= cfg.update.quiet_s:
            return True
        if clock() >= deadline:
            return False
        sleep(min(5.0, max(cfg.update.quiet_s, 0.1)))


def _switch(folder: Path, target: str) -> None:
    """``folder/current`` -> ``target``, atomically (a new link renamed over the old)."""
    link = folder / "current"
    new = folder / ".current.new"
    new.unlink(missing_ok=True)
    new.symlink_to(target)
    os.replace(new, link)


def _launcher(release: Path, final: Path) -> None:
    """``release/bin/kiosk``, for the release once it is at ``final``."""
    bin_dir = release / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "kiosk"
    script.write_text(
        "#!/bin/sh\n# this release of the kiosk software, run with the interpreter it was installed for\n"
        f'PYTHONPATH="{final / "lib"}${{PYTHONPATH:+:$PYTHONPATH}}" '
        f'exec "{sys.executable}" -P -m kiosk.cli "$@"\n'
    )
    script.chmod(0o755)


def install_release(folder: Path, release: Release, files: dict[str, Path]) -> Path:
    """The release beside the running one: RELEASES/VERSION/{lib,bin/kiosk}."""
    final = folder / release.version
    if (final / "bin" / "kiosk").exists():
        return final
    partial = folder / f".{release.version}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    wheels = [str(p) for p in files.values()]
    p = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-compile",
         "--disable-pip-version-check", "--target", str(partial / "lib"), *wheels],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if p.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise UpdateFault(f"installing {release.version} failed: {p.stderr.strip()[-200:]}")
    _launcher(partial, final)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return final


def _selftest_image(folder: Path) -> Path:
    """A test code for the new release's decoder (the real one, on a real image)."""
    import cv2
    import numpy as np
    import zxingcpp

    path = folder / "selftest.png"
    if not path.exists():
        code = zxingcpp.create_barcode(SELFTEST_TEXT, zxingcpp.BarcodeFormat.QRCode)
        img = np.asarray(code.to_image(scale=8, add_quiet_zones=True))
        cv2.imwrite(str(path), img)
    return path


def _health(cfg: Config, launcher: Path, *, baseline: int, want: str, timeout: float) -> str | None:
    """None when healthy; else why not. The new release must say its version, decode the test
    code, and its doctor must be no worse than the old one's."""
    config = str(cfg.source) if cfg.source else ""
    deadline = time.monotonic() + timeout

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(args, timeout)
        return subprocess.run(
            [*_as_user(cfg), str(launcher), *args], capture_output=True, text=True, timeout=left
        )

    try:
        said = run("--version")
        if said.returncode != 0 or want not in said.stdout:
            return f"does not start ({(said.stderr or said.stdout).strip()[-40:]})"
        scan = run("scan", "--config", config, "--json", str(_selftest_image(launcher.parent.parent)))
        lines = [json.loads(x) for x in scan.stdout.splitlines() if x.startswith("{")]
        if not lines or lines[0].get("reason") == "no_code":
            return "its decoder did not read the test code"
        doctor = run("doctor", "--config", config, "--no-camera")
        if doctor.returncode > baseline:
            failed = [x for x in doctor.stdout.splitlines() if x.startswith("FAIL")]
            return "doctor: " + (failed[0][6:].strip() if failed else f"exit {doctor.returncode}")
    except subprocess.TimeoutExpired:
        return f"not healthy within {timeout:g} s"
    except (OSError, ValueError) as e:
        return f"does not start ({type(e).__name__})"
    return None


def _doctor_status(cfg: Config, launcher: Path | None) -> int:
    argv = [*_as_user(cfg), *([str(launcher)] if launcher else [sys.executable, "-P", "-m", "kiosk.cli"])]
    config = str(cfg.source) if cfg.source else ""
    try:
        return subprocess.run(
            [*argv, "doctor", "--config", config, "--no-camera"], capture_output=True, timeout=120
        ).returncode
    except (OSError, subprocess.TimeoutExpired):
        return EXIT_CHECK_FAILED


def _as_user(cfg: Config) -> list[str]:
    """The release runs as its services' user, never as the updater's root."""
    if cfg.update.run_as and os.geteuid() == 0:
        return ["runuser", "-u", cfg.update.run_as, "--"]
    return []


def _restart(cfg: Config) -> None:
    if cfg.update.restart_command:
        p = subprocess.run(
            shlex.split(cfg.update.restart_command), capture_output=True, text=True, timeout=120
        )
        if p.returncode != 0:
            log.error("update: restart command exited %d: %s", p.returncode, p.stderr.strip()[-120:])


def _remember(cfg: Config, outcome: Outcome, *, failed: str | None = None) -> Outcome:
    """What happened, for the health summary the next sync signs (kiosk.health)."""
    status = read_status(releases_dir(cfg))
    status["status"] = outcome.line()[:64]
    if failed:
        status["failed_version"] = failed
    path = status_path(releases_dir(cfg))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(status))
    tmp.chmod(0o644)  # the sync service reads it; only the updater writes it
    os.replace(tmp, path)
    return outcome


def update(
    cfg: Config,
    *,
    check_only: bool = False,
    session: requests.Session | None = None,
    current: str | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    from tuf.api import exceptions as tuf_errors
    from tuf.ngclient import Updater

    if not (cfg.sync.server_url and cfg.sync.kiosk_id):
        raise ConfigError("[sync] server_url and kiosk_id: updates come from the server of an enrolled kiosk")
    current = current or running_version(cfg)
    folder = releases_dir(cfg)
    state_dir = folder / ".updates"  # the updater's own: beside the releases, never the kiosk user's
    meta_dir, downloads = state_dir / "metadata", state_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    verify: bool | str = cfg.sync.ca_bundle or cfg.sync.verify_tls
    fetcher = _Fetcher(
        session or requests.Session(),
        verify=verify,
        timeout=cfg.sync.timeout_s,
        partial=state_dir / "partial",
    )
    base = cfg.sync.server_url.rstrip("/") + UPDATES_PATH + "/"
    try:
        if not _trusted_root(cfg, meta_dir, fetcher):
            return Outcome("none", current, "no release published")
        tuf = Updater(str(meta_dir), base, str(downloads), base + "targets/", fetcher, bootstrap=None)
        tuf.refresh()
        info = tuf.get_targetinfo(RELEASE_FILE)
        if info is None:
            return Outcome("none", current, "no release published")
        release = read_release(Path(tuf.download_target(info, str(downloads / RELEASE_FILE))).read_bytes())
    except tuf_errors.ExpiredMetadataError as e:
        return _remember(cfg, Outcome("refused", "", f"release metadata expired ({e})"))
    except tuf_errors.DownloadError as e:
        raise UpdateFault(f"{base}: no answer ({type(e).__name__}); nothing was changed") from None
    except (tuf_errors.RepositoryError, ReleaseError) as e:
        return _remember(cfg, Outcome("refused", "", f"{type(e).__name__}: {e}"))
    if vkey(release.version) <= vkey(current) if re.fullmatch(r"\d+\.\d+\.\d+", current) else False:
        return Outcome("current", current, f"the published release is {release.version}")
    if not release.rollout.includes(cfg.sync.kiosk_id, release.version):
        return Outcome(
            "not_for_this_kiosk", release.version, f"rolled out to {release.rollout.percent}% so far"
        )
    if read_status(folder).get("failed_version") == release.version:
        return Outcome("current", current, f"{release.version} was rolled back here; waiting for a newer one")
    wanted = {n: tuf.get_targetinfo(target_path(release.version, n)) for n in release.files}
    if any(v is None for v in wanted.values()):
        return _remember(cfg, Outcome("refused", release.version, "a file of the release is not signed"))
    needed = {n: t for n, t in wanted.items() if n == release.project or not _installed(n)}
    size = sum(t.length for t in needed.values() if t is not None)
    if size > cfg.update.max_download_mb * 1_000_000:
        return _remember(
            cfg, Outcome("refused", release.version, f"{size // 1_000_000} MB over [update] max_download_mb")
        )
    if check_only:
        return Outcome("available", release.version, f"{len(needed)} files, {size} bytes to download")
    files: dict[str, Path] = {}
    try:
        for name, t in needed.items():
            assert t is not None
            path = downloads / name
            cached = tuf.find_cached_target(t, str(path))
            files[name] = Path(cached or tuf.download_target(t, str(path)))
    except tuf_errors.DownloadError as e:
        raise UpdateFault(f"{base}: download interrupted ({type(e).__name__}); run it again") from None
    except tuf_errors.RepositoryError as e:
        return _remember(cfg, Outcome("refused", release.version, f"a file does not match: {e}"))
    folder.mkdir(parents=True, exist_ok=True)
    installed = install_release(folder, release, files)
    link = folder / "current"
    previous = os.readlink(link) if link.is_symlink() else None
    if not _quiet(cfg, clock=clock, sleep=sleep):
        return Outcome(
            "available", release.version, "installed; the door was never quiet: switches next round"
        )
    baseline = _doctor_status(cfg, link / "bin" / "kiosk" if previous else None)  # what "no worse" means
    _switch(folder, installed.name)
    _restart(cfg)
    why = _health(
        cfg, folder / "current" / "bin" / "kiosk", baseline=baseline, want=release.version,
        timeout=cfg.update.health_timeout_s,
    )  # fmt: skip
    if why is None:
        keep = {release.version, previous, "base"}  # the running one, the one before, the install
        for old in folder.iterdir():  # (".updates" and the like are the updater's own)
            if (
                old.is_dir()
                and not old.is_symlink()
                and old.name not in keep
                and not old.name.startswith(".")
            ):
                shutil.rmtree(old, ignore_errors=True)
        return _remember(cfg, Outcome("installed", release.version, f"from {current}; healthy"))
    if previous:
        _switch(folder, previous)
    else:
        link.unlink(missing_ok=True)
    _restart(cfg)
    return _remember(cfg, Outcome("rolled_back", release.version, why), failed=release.version)
