"""`scripts/release --out DIR`: a release of the device software, built reproducibly from a
commit: the project's wheel (built from the commit's files alone, with its timestamps set to
the commit's time: two builds of one commit are byte for byte the same), the wheels of what
`[device]` needs on a Raspberry Pi (from requirements/device-pi.lock, hashes checked by
pip; numpy is Raspberry Pi OS's own), and release.json naming each with its SHA-256. The
committee signs it with `kiosk-central release publish`."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kiosk.core.releasefiles import RELEASE_FILE, Release, version_key

ROOT = Path(__file__).resolve().parents[2]
PI_PLATFORMS = ("manylinux_2_17_aarch64", "manylinux2014_aarch64", "manylinux_2_28_aarch64", "linux_aarch64")


class BuildError(Exception):
    pass


def _git(source: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(source), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def export(source: Path, into: Path) -> int:
    """The commit's files (what `git ls-files` tracks, as checked out) copied into ``into``;
    returns the commit's time, the timestamp every file in the wheel gets."""
    try:
        dirty = _git(source, "status", "--porcelain", "--untracked-files=no")
        files = _git(source, "ls-files", "-z").split("\0")
        epoch = int(_git(source, "log", "-1", "--format=%ct"))
    except (subprocess.CalledProcessError, FileNotFoundError, ValueError):
        raise BuildError(f"{source}: not a git checkout (a release is built from a commit)") from None
    if dirty:
        raise BuildError(
            f"{source}: uncommitted changes (a release is built from a commit): commit them first"
        )
    for name in filter(None, files):
        src = source / name
        if src.is_file():
            dest = into / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    return epoch


def build(source: Path, out: Path, *, project_only: bool = False) -> Release:
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise BuildError(f"--out {out}: not empty (a release goes into a folder of its own)")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        epoch = export(source, src)
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), PYTHONHASHSEED="0")
        p = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
             "--wheel-dir", str(out), str(src)],
            capture_output=True, text=True, env=env, cwd=tmp,
        )  # fmt: skip
        if p.returncode != 0:
            raise BuildError(f"building the project's wheel failed: {p.stderr.strip()[-300:]}")
    [project] = list(out.glob("*.whl"))
    version = project.name.split("-")[1]
    version_key(version)
    if not project_only:
        lock = source / "requirements" / "device-pi.lock"
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.11", "--implementation", "cp",
               "--dest", str(out), "-r", str(lock)]  # fmt: skip
        for platform in PI_PLATFORMS:
            cmd += ["--platform", platform]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise BuildError(f"fetching the Pi's wheels failed: {p.stderr.strip()[-300:]}")
    files = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in sorted(out.glob("*.whl"))}
    release = Release(version=version, files=files, project=project.name)
    (out / RELEASE_FILE).write_bytes(release.encode())
    return release


def snapshot(source: Path, into: Path, *, version: str | None = None) -> Path:
    """A git clone of ``source`` holding its working tree as it is (tracked and new files),
    committed there, optionally as ``version``: what the tests and the benchmark build
    releases from, so that they need no commit of their own."""
    import re

    subprocess.run(["git", "clone", "-q", str(source), str(into)], check=True)
    listed = _git(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        if (source / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, into / name)
    if version:
        py = into / "pyproject.toml"
        py.write_text(
            re.sub(r'^version = "[^"]+"', f'version = "{version}"', py.read_text(), count=1, flags=re.M)
        )
    git = ["git", "-C", str(into), "-c", "user.name=release", "-c", "user.email=release@example.invalid"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", f"snapshot {version or ''}", "--allow-empty"], check=True)
    return into


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/release", description=__doc__)
    p.add_argument("--out", required=True, metavar="DIR", help="an empty folder for the release")
    p.add_argument(
        "--project-only",
        action="store_true",
        help="only the project's wheel (the kiosks' dependencies stay as installed); no download",
    )
    p.add_argument("--source", default=str(ROOT), metavar="DIR", help="the checkout to build (this one)")
    args = p.parse_args(argv)
    try:
        release = build(Path(args.source), Path(args.out), project_only=args.project_only)
    except BuildError as e:
        print(f"release: {e}", file=sys.stderr)
        return 2
    for name, digest in sorted(release.files.items()):
        print(f"{digest}  {name}")
    print(f"release {release.version}: {len(release.files)} files in {args.out}; sign it with "
          f"kiosk-central release publish --keys DIR --data DIR {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
