"""The manual (docs/), tested like code: it builds strictly; its command reference is what the
parsers say; every command block either runs, as typed, in a fresh folder, in page order, with
the output the page shows, or says why not (and still names only real commands and options);
README stays short and points each role into it.

Two things differ from a person at a terminal, and only these: the ports the pages name
(8080, 9464) are replaced by free ones, since a server may already hold them here; and after
a line that starts a server in the background (`... &`), the next block waits until it
answers, as a person waits for "serving on". What one block sets or exports, the next block
sees, as in one terminal."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from testkit import BIN, ROOT
from workbench import manual
from workbench.localserver import free_port

pytestmark = pytest.mark.slow


def test_the_manual_builds_strictly(tmp_path):
    r = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    built = tmp_path / "site"
    assert (built / "door" / "index.html").exists() and (built / "km" / "door" / "index.html").exists()
    assert 'lang="km"' in (built / "km" / "door" / "index.html").read_text()


def test_the_command_reference_is_what_the_parsers_say():
    assert (manual.DOCS / "reference" / "commands.md").read_text() == manual.command_reference(), (
        "docs/reference/commands.md is not current: run scripts/docs --reference"
    )


def test_every_command_block_runs_or_says_why_and_names_real_commands():
    from kiosk.cli import build_parser as kiosk_parser
    from sync.central.cli import build_parser as central_parser

    walked = {page for pages in manual.WALKTHROUGHS.values() for page in pages}
    unexplained, wrong = [], []
    for page in manual.pages():
        for block in manual.blocks(page):
            if block.info.split()[:1] != ["sh"]:
                continue
            if block.runs and page not in walked:
                unexplained.append(
                    f"{page}: a command block no walkthrough runs, and no <!-- not run: why -->"
                )
            if not block.runs and len((block.note or "").strip()) <= len(manual.NOT_RUN) + 3:
                unexplained.append(f"{page}: a block not run says no reason")
            if block.runs:
                continue  # it runs in its walkthrough: checked for real there
            for line in block.body.splitlines():
                words = shlex.split(line.replace("$(", "").replace(")", ""), comments=True)
                while words and (words[0] in ("sudo", "exec") or words[0].startswith("-") or "=" in words[0]):
                    if "=" in words[0] and not words[0].startswith("-") and words[0].split("=", 1)[1]:
                        words = [words[0].split("=", 1)[1], *words[1:]]  # name=$(command ...)
                        break
                    words = words[1:] if words[0] != "-u" else words[2:]
                if not words:
                    continue
                name = Path(words[0]).name
                if name not in ("kiosk", "kiosk-central"):
                    continue
                parser = kiosk_parser() if name == "kiosk" else central_parser()
                if name == "kiosk-central":  # what a configuration file could supply is not required here
                    from sync.central.cli.configfile import leaves

                    for _, leaf in leaves(parser):
                        for action in leaf._actions:
                            action.required = False
                        for group in leaf._mutually_exclusive_groups:
                            group.required = False
                args = []
                for w in words[1:]:
                    if w in ("|", ">", ">>", "&&", ";", "&") or w.startswith(">"):
                        break  # the rest is the shell's (a pipe, a redirect)
                    args.append(w)
                try:
                    parser.parse_args(args)
                except SystemExit:
                    wrong.append(f"{page}: {line}")
    assert unexplained == [] and wrong == [], unexplained + wrong


ASSIGNED = re.compile(r"(?:^|[;&|]\s*|\s)(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", re.M)


def segments(body: str) -> list[tuple[str, bool]]:
    """(script, background): a block cut at each line that ends in ``&``."""
    out: list[tuple[str, bool]] = []
    current: list[str] = []
    lines = iter(body.splitlines())
    for line in lines:
        if line.rstrip().endswith(" &"):
            if current:
                out.append(("\n".join(current) + "\n", False))
                current = []
            out.append((line.rstrip()[:-1].strip(), True))
        elif "<<'END'" in line:  # a here-document: its lines go with it
            current.append(line)
            for body_line in lines:
                current.append(body_line)
                if body_line == "END":
                    break
        else:
            current.append(line)
    if current:
        out.append(("\n".join(current) + "\n", False))
    return out


@pytest.mark.parametrize("name", sorted(manual.WALKTHROUGHS))
def test_each_walkthrough_runs_as_typed_in_a_fresh_folder(name, tmp_path):
    port, metrics = free_port(), free_port()
    work = tmp_path / name
    work.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KIOSK_CENTRAL")},
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "HOME": str(tmp_path),  # the committee's machine remembers the audit head here
    }
    saved = tmp_path / "shell.sh"  # what a block sets or exports, the next one sees (one terminal)
    saved.write_text("")
    background: list[subprocess.Popen] = []

    def sub(text: str) -> str:
        return text.replace("8080", str(port)).replace("9464", str(metrics))

    try:
        for page in manual.WALKTHROUGHS[name]:
            for block in manual.blocks(page):
                if not block.runs:
                    continue
                printed = []
                for script, in_background in segments(sub(block.body)):
                    if in_background:
                        log = open(tmp_path / "background.log", "ab")
                        background.append(
                            subprocess.Popen(
                                ["bash", "-c", f"source {saved}; exec {script}"],
                                cwd=work,
                                env=env,
                                stdout=log,
                                stderr=log,
                                start_new_session=True,
                            )
                        )
                        log.close()
                        deadline = time.monotonic() + 60
                        while time.monotonic() < deadline:
                            assert background[-1].poll() is None, (tmp_path / "background.log").read_text()
                            try:
                                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                                    break
                            except requests.RequestException:
                                time.sleep(0.1)
                        continue
                    names = " ".join(sorted(set(ASSIGNED.findall(script)))) or "_none_"  # never all
                    keep = (
                        f"{{ cat {saved}; declare -p {names} 2>/dev/null || true; }} > {saved}.new; "
                        f"mv {saved}.new {saved}"
                    )
                    r = subprocess.run(
                        ["bash", "-c", f"set -euo pipefail; source {saved}\n{script}\n{keep}"],
                        cwd=work,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=300,
                    )
                    where = f"{page}:\n{script}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
                    assert r.returncode == 0, where
                    assert "Traceback" not in r.stderr and "[Errno" not in r.stderr, where
                    printed.append(r.stdout + r.stderr)
                if block.shown is not None:
                    missing = manual.shown_lines_missing(sub(block.shown), "\n".join(printed))
                    assert missing == [], f"{page}: shown but not printed: {missing}\n" + "\n".join(printed)
    finally:
        for proc in background:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def test_readme_is_short_and_points_each_role_into_the_manual():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for page in ("door.md", "technician/index.md", "operator/index.md", "committee/index.md",
                 "visitors/privacy.md", "reference/index.md", "promises/index.md"):  # fmt: skip
        assert f"(docs/{page})" in readme, page
        assert (manual.DOCS / page).exists(), page
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link
