"""MkDocs hook: docs/cli.md's reference section is generated at build time from the argparse parsers
(``unet3plus.cli.build_parser``), so every subcommand and option the code has is documented, and nothing else.

The page holds the marker ``<!-- cli-reference -->``; this hook replaces it with the top-level usage and, per
subcommand, its ``--help`` text (at a fixed width of 100 columns, so the page does not depend on the terminal).
"""
from __future__ import annotations

import argparse
import os

MARKER = "<!-- cli-reference -->"


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:  # argparse keeps its subparsers here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def _help_text(parser: argparse.ArgumentParser) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help().rstrip()
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def render_reference() -> str:
    from unet3plus.cli import build_parser

    parser = build_parser()
    sections = ["## unet3plus", "", "```text", _help_text(parser), "```", ""]
    for name, subparser in _subcommands(parser):
        sections += [f"## unet3plus {name}", "", "```text", _help_text(subparser), "```", ""]
    return "\n".join(sections)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != "cli.md":
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/cli.md lost its marker {MARKER}")
    return markdown.replace(MARKER, render_reference())
