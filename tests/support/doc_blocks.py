"""The fenced code blocks of a Markdown document, with the run marker before each.

tests/test_docs_commands.py runs README.md's and docs/'s blocks; each example's own test runs
the commands of its README (examples/*/README.md) with `shell_commands`. A marker is an HTML
comment on the line before a block: `<!-- run: background -->`, `<!-- run: file NAME -->` or
`<!-- run: skip, REASON -->` (tests/test_docs_commands.py says what each means).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "SHELL", "Block", "read_blocks", "shell_commands"]

ROOT = Path(__file__).resolve().parents[2]
"""The repository's folder."""

SHELL = ("sh", "bash", "shell")
_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!-- run: (.+?) -->$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a document."""

    doc: str
    line: int
    lang: str
    text: str
    marker: str | None

    @property
    def where(self) -> str:
        """`doc:line` of the opening fence."""
        return f"{self.doc}:{self.line}"

    @property
    def runs(self) -> bool:
        """Whether the walk-through runs this block (as a command or by saving it)."""
        if self.marker is None:
            return self.lang in SHELL
        return not self.marker.startswith("skip")


def read_blocks(doc: str) -> list[Block]:
    """The fenced blocks of `doc` with the run marker on the line before each."""
    lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        marker = _MARKER.match(previous.strip())
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        blocks.append(
            Block(
                doc=doc,
                line=index + 1,
                lang=opening.group(1),
                text="\n".join(lines[index + 1 : end]) + "\n",
                marker=marker.group(1) if marker else None,
            )
        )
        index = end + 1
    return blocks


def shell_commands(doc: str) -> list[str]:
    """The text of each shell block of `doc` (a path from the repository's folder) that a
    reader runs (not marked skip), in order."""
    return [block.text for block in read_blocks(doc) if block.lang in SHELL and block.runs]
