"""The manual (docs/) as the tests and `scripts/docs` read it: each page's command blocks in
order, with the output a page shows after one, and the command reference generated from the
parsers themselves (never retyped).

A page's blocks:
- a ```sh block is a command block: the tests run it, as typed, in bash, in page order, in a
  fresh folder shared by the pages of one walkthrough;
- a ```text block right after one is its shown output: every line of it (``...`` matching
  anything within a line; a line that is only ``...`` stands for lines left out) must appear
  in what the block printed, in order;
- a command block that cannot run here is marked just before it with an HTML comment,
  ``<!-- not run: REASON -->`` (a Raspberry Pi, root on a server); its `kiosk` and
  `kiosk-central` lines are still checked against the parsers.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from workbench import ROOT

DOCS = ROOT / "docs"
FENCE = re.compile(
    r"(?P<comment><!--(?P<note>(?:(?!-->).)*)-->[ \t]*\n(?:[ \t]*\n)*)?"
    r"(?P<indent>[ \t]*)```(?P<info>[^\n]*)\n(?P<body>.*?)\n(?P=indent)```",
    re.S,
)
NOT_RUN = "not run:"

# The walkthroughs: pages run in this order, each walkthrough in a fresh folder of its own.
WALKTHROUGHS = {
    "technician": ["technician/laptop.md"],
    "operator": ["operator/pilot.md", "operator/monitoring.md"],
    "committee": [
        "committee/founding.md",
        "committee/passes.md",
        "committee/case.md",
        "committee/members-and-keys.md",
    ],
}


@dataclass(frozen=True)
class Block:
    page: str
    info: str
    body: str
    note: str | None  # the HTML comment just before it, if any
    shown: str | None = None  # the ```text block after a command block

    @property
    def runs(self) -> bool:
        return self.info.split()[:1] == ["sh"] and not (self.note or "").strip().startswith(NOT_RUN)


def blocks(page: str) -> list[Block]:
    """The page's fenced blocks, in order; a command block carries the output shown after it."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        indent = m.group("indent")
        body = "\n".join(line.removeprefix(indent) for line in m.group("body").split("\n"))
        found.append(Block(page, m.group("info").strip(), body, m.group("note"), None))
    out: list[Block] = []
    for b in found:
        if b.info == "text" and out and out[-1].info.split()[:1] == ["sh"] and out[-1].shown is None:
            out[-1] = Block(out[-1].page, out[-1].info, out[-1].body, out[-1].note, b.body)
        else:
            out.append(b)
    return out


def pages() -> list[str]:
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "overrides" not in p.parts)


def shown_lines_missing(shown: str, printed: str) -> list[str]:
    """The shown lines not found in what was printed, in order ([] when all are)."""
    lines = [line.rstrip() for line in printed.splitlines()]
    at, missing = 0, []
    for want in (w.rstrip() for w in shown.splitlines()):
        if not want.strip() or want.strip() == "...":
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("...")))
        for i in range(at, len(lines)):
            if pattern.fullmatch(lines[i]):
                at = i + 1
                break
        else:
            missing.append(want)
    return missing


# -- the command reference, from the parsers ----------------------------------------------------------
def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...]):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    helps = {c.dest: c.help for c in subs[0]._choices_actions}
    for name, sub in subs[0].choices.items():
        sub.description = sub.description or helps.get(name)
        yield from _leaves(sub, (*path, name))


def _option(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    name = ", ".join(f"`{s}`" for s in action.option_strings)
    if action.nargs == 0:
        return name
    meta = action.metavar or (
        "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper()
    )
    return f"{name} `{meta}`"


def command_reference() -> str:
    """docs/reference/commands.md: every command and option of `kiosk` and `kiosk-central`."""
    from kiosk.cli import build_parser as kiosk_parser
    from sync.central.cli import build_parser as central_parser

    out = [
        "# Commands",
        "",
        "Every command and option of `kiosk` (the device) and `kiosk-central` (the authority), "
        "generated from the programs' own parsers by `scripts/docs --reference` (the tests check "
        "this page is current). `COMMAND --help` prints the same.",
        "",
    ]
    for prog, parser in (("kiosk", kiosk_parser()), ("kiosk-central", central_parser())):
        out += [f"## {prog}", ""]
        for path, leaf in _leaves(parser, (prog,)):
            out += [f"### {' '.join(path)}", ""]
            if leaf.description:
                out += [leaf.description[0].upper() + leaf.description[1:] + ".", ""]
            usage = " ".join(leaf.format_usage().split()).removeprefix("usage: ")
            out += ["```text", usage, "```", ""]
            rows = [
                a
                for a in leaf._actions
                if not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS
            ]
            if rows:
                out += ["| option | what |", "| --- | --- |"]
                for a in rows:
                    what = (a.help or "").replace("|", "\\|").replace("\n", " ")
                    if a.required:
                        what = "required" + (f"; {what}" if what else "")
                    default = a.default
                    if default not in (None, False, argparse.SUPPRESS) and "default" not in what:
                        what += f" (default {default})"
                    out.append(f"| {_option(a)} | {what} |")
                out.append("")
    return "\n".join(out).rstrip() + "\n"
