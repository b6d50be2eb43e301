"""The README's fenced blocks as runnable commands: where they are, whether they run, what each must answer."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"<!--\s*readme:\s*skip\b:?\s*(.*?)\s*-->")
ANSWER = re.compile(r"^#\s*->\s*(\d{3})\b")  # `# -> 401 ...` under a command: the status it answers
RUN = ("sh",)  # the fences that run; others (python, text, the layout) are read, not run


@dataclass
class Command:
    line: int  # where it starts in the README
    text: str
    status: str = "2xx"  # what its curl calls must answer


@dataclass
class Block:
    line: int  # the opening fence's line in the README
    language: str
    text: str
    skip: str | None  # why it does not run here, from its marker; None: it runs
    commands: list[Command] = field(default_factory=list)


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, with the skip marker on the nearest non-blank line above its fence."""
    lines = markdown.splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        above = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = SKIP.search(above)
        body = lines[i + 1:end]
        block = Block(i + 1, fence[1], "\n".join(body), marker[1] if marker else None)
        if block.language in RUN:
            block.commands = commands(body, first_line=i + 2)
        found.append(block)
        i = end + 1
    return found


def commands(lines: list[str], first_line: int) -> list[Command]:
    """The shell commands of a block, each with its continuation lines (a trailing backslash, or a quote still
    open), and the status a `# -> NNN` comment right under it declares."""
    out: list[Command] = []
    pending: list[str] = []
    start = 0
    for offset, line in enumerate(lines):
        if not pending:
            answer = ANSWER.match(line.strip())
            if answer and out:
                out[-1].status = answer[1]
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = first_line + offset
        pending.append(line)
        text = "\n".join(pending)
        if not text.endswith("\\") and complete(text):
            out.append(Command(start, text))
            pending = []
    if pending:
        raise ValueError(f"README line {start}: a command never ends (an open quote?)")
    return out


def complete(text: str) -> bool:
    """Whether the shell would stop reading here: every quote closed."""
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return False
    return True
