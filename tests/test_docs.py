"""The README and docs/ cannot rot: runnable examples run, and relative links resolve.

A ```python block on the line after the comment ``<!-- run -->`` (invisible when rendered,
on GitHub and in other Markdown converters) is run, alone, in a fresh interpreter in a
temporary folder (so what it writes lands there); other Python blocks are illustrations
(they name data or weight files this machine may not have). Every relative link and image
must name an existing file, and a ``#anchor`` a heading of the page it points to.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
RUN_MARKER = "<!-- run -->"

FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
# [text](target) and ![alt](target); the target ends at whitespace or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


RUNNABLE = re.compile(
    r"^" + re.escape(RUN_MARKER) + r"[ \t]*\n```python[ \t]*\n(.*?)^```\s*$",
    re.MULTILINE | re.DOTALL,
)


def runnable_blocks(text: str) -> list[str]:
    """The code of every ```python block right after a ``<!-- run -->`` line."""
    return RUNNABLE.findall(text)


def without_code(text: str) -> str:
    """The text with fenced blocks and inline code removed (links in code are not links)."""
    text = FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"`|\*\*|\*", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8")))}


def link_problems(page: Path) -> list[str]:
    """What is wrong with the page's relative links and images, one line each."""
    problems = []
    for target in LINK.findall(without_code(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            problems.append(f"{page.name}: {target} -> no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{page.name}: {target} -> no heading #{anchor}")
    return problems


BLOCKS = [
    pytest.param(code, id=f"{page.relative_to(REPO_ROOT)}-{i}")
    for page in PAGES
    for i, code in enumerate(runnable_blocks(page.read_text(encoding="utf-8")), 1)
]


def test_the_readme_has_runnable_blocks():
    assert len(runnable_blocks((REPO_ROOT / "README.md").read_text(encoding="utf-8"))) >= 4


@pytest.mark.parametrize("code", BLOCKS)
def test_runnable_block_runs(code, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page):
    assert link_problems(page) == []


def test_link_check_catches_a_broken_link_and_anchor(tmp_path):
    (tmp_path / "there.md").write_text("# A heading\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-heading) ![gone](missing.png)\n"
        "[bad anchor](there.md#no-such) [web](https://example.org/x.md)\n"
        "`[in code](nowhere.md)`\n",
        encoding="utf-8",
    )
    assert link_problems(page) == [
        "page.md: missing.png -> no such file",
        "page.md: there.md#no-such -> no heading #no-such",
    ]


def test_runnable_marker_is_exact():
    text = (
        "<!-- run -->\n```python\nprint(1)\n```\n```python\nprint(2)\n```\n"
        "<!-- run -->\n\n```python\nprint(3)\n```\n<!-- run -->\n```bash\nls\n```\n"
    )
    assert runnable_blocks(text) == ["print(1)\n"]
