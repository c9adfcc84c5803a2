"""The README's examples, run as written: every fenced block says (in an HTML comment just above
it) whether the tests run it, and the quick start runs end to end in an empty folder.

Directives, ``<!-- doctest: KIND; key: value; ... -->`` on the line before a fence:

- ``quickstart``: the quick start; its blocks run in order in one fresh, empty folder (toy data
  only, no IIS_DATA needed);
- ``run``: run in README order in one folder shared by every ``run`` block, where
  ``../shared/data`` is IIS_DATA (the whole set skips when the real sets are absent);
- ``skip: REASON``: not run, and the reason says why (a server, a data set this machine lacks,
  the test suite itself...).

Keys: ``creates: PATH ...`` (files the block claims to write; checked), ``expect: TEXT`` (in its
output), ``sub: OLD => NEW`` (repeatable: a literal replacement that makes a long example
short, e.g. ``--steps 100000 => --steps 2``; the command is otherwise the README's).
``sh`` blocks run in bash (``set -e``), with ``iis-pipe`` running this checkout's code;
``python`` blocks run in a fresh interpreter.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from iis_pipe.data_root import data_root

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\S*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*doctest:\s*(.*?)\s*-->\s*$")
REAL_SETS = ("GrabCut", "Berkeley", "DAVIS")


@dataclass
class Block:
    line: int                      # 1-based line of the opening fence
    lang: str
    code: str
    heading: str
    kind: str | None = None        # quickstart, run, skip; None: no directive
    reason: str = ""
    creates: list[str] = field(default_factory=list)
    expect: list[str] = field(default_factory=list)
    subs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"L{self.line}-{re.sub(r'[^a-z0-9]+', '-', self.heading.lower()).strip('-')}"

    def script(self) -> str:
        code = self.code
        for old, new in self.subs:
            assert old in code, f"README line {self.line}: sub {old!r} matches nothing"
            code = code.replace(old, new)
        return code


def parse(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, with the directive on the line before it."""
    blocks, lines = [], text.splitlines()
    heading, i = "", 0
    while i < len(lines):
        if lines[i].startswith("#"):
            heading = lines[i].lstrip("#").strip()
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        block = Block(i + 1, m.group(1), "\n".join(lines[i + 1:end]) + "\n", heading)
        d = DIRECTIVE.match(lines[i - 1]) if i else None
        if d:
            _apply(block, d.group(1))
        blocks.append(block)
        i = end + 1
    return blocks


def _apply(block: Block, directive: str) -> None:
    if directive.startswith("skip"):  # the reason is free text, semicolons included
        block.kind, block.reason = "skip", directive.partition(":")[2].strip()
        return
    kind, *parts = [p.strip() for p in directive.split(";")]
    block.kind = kind
    for part in parts:
        key, _, value = part.partition(":")
        key, value = key.strip(), value.strip()
        if key == "creates":
            block.creates += value.split()
        elif key == "expect":
            block.expect.append(value)
        elif key == "sub":
            old, _, new = value.partition(" => ")
            block.subs.append((old, new))
        else:
            raise ValueError(f"README line {block.line}: unknown doctest key {key!r}")


BLOCKS = parse(README.read_text())
QUICK = [b for b in BLOCKS if b.kind == "quickstart"]
RUN = [b for b in BLOCKS if b.kind == "run"]


def _shim(bin_dir: Path) -> dict[str, str]:
    """An environment whose ``iis-pipe`` and ``python`` are this interpreter on this checkout
    (the console script of another install would import other code)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, args in (("iis-pipe", " -m iis_pipe.cli"), ("python", "")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}"{args} "$@"\n')
        shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("NUMBA_CACHE_DIR", str(bin_dir.parent / "numba-cache"))
    return env


def execute(block: Block, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run a block; fail with its output unless it exits 0, writes what it claims and prints
    what it claims. Returns stdout and stderr together."""
    if block.lang in ("sh", "bash", "shell"):
        cmd = ["bash", "-e", "-o", "pipefail", "-c", block.script()]
    elif block.lang == "python":
        cmd = [sys.executable, "-c", block.script()]
    else:
        raise AssertionError(f"README line {block.line}: a {block.lang or 'plain'} block cannot "
                             "run; mark it ```sh or ```python, or skip it with a reason")
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"README line {block.line} exited {res.returncode}:\n{out[-3000:]}"
    missing = [p for p in block.creates if not (cwd / p).exists()]
    assert not missing, f"README line {block.line} did not write {missing}:\n{out[-2000:]}"
    for text in block.expect:
        assert text in out, f"README line {block.line}: {text!r} not in its output:\n{out[-2000:]}"
    return out


def test_every_block_says_whether_it_runs():
    """A new example cannot slip past the doc-tests: it runs, or it says why it does not."""
    unmarked = [f"line {b.line} ({b.heading})" for b in BLOCKS if b.kind is None]
    assert not unmarked, f"README blocks without a <!-- doctest: ... --> line: {unmarked}"
    bad = [b.line for b in BLOCKS if b.kind not in ("quickstart", "run", "skip")
           or (b.kind == "skip" and not b.reason)]
    assert not bad, f"README blocks with an unknown directive or a skip without reason: {bad}"
    assert len(QUICK) >= 1 and len(RUN) >= 5


def test_quick_start_comes_first():
    """Right after the two make lines: the first section is the quick start, and it ends with a
    NoC table and a plot."""
    lines = README.read_text().splitlines()
    first = next(b for b in BLOCKS)
    assert first.code.splitlines()[0].startswith("make demo")
    sections = [line for line in lines if line.startswith("## ")]
    assert sections[0].lower().startswith("## quick start")
    assert any(p.endswith(".png") for b in QUICK for p in b.creates)
    assert any("|" in text for b in QUICK for text in b.expect)  # a table row


def test_links_resolve():
    """Relative links (docs/cli.md, docs/benchmark-history.md, pictures) name files that exist."""
    links = re.findall(r"\]\(([^)#\s]+)[^)]*\)", README.read_text())
    local = [x for x in links if "://" not in x]
    assert "docs/cli.md" in local and "docs/benchmark-history.md" in local
    assert [x for x in local if not (ROOT / x).exists()] == []


@pytest.mark.slow
def test_quick_start_runs_in_an_empty_folder(tmp_path):
    """Every quick start block, in order, in an empty folder: each exits 0 and writes and prints
    what the README says."""
    work = tmp_path / "work"
    work.mkdir()
    env = _shim(tmp_path / "bin")
    for block in QUICK:
        execute(block, work, env, timeout=900)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """The folder the ``run`` blocks share, with ``../shared/data`` -> IIS_DATA."""
    data = data_root()
    absent = [s for s in REAL_SETS if not (data / s).is_dir()]
    if absent:
        pytest.skip(f"README examples need {absent} under IIS_DATA={data}")
    base = tmp_path_factory.mktemp("readme")
    (base / "shared").mkdir()
    (base / "shared" / "data").symlink_to(data.resolve())
    work = base / "repo"
    work.mkdir()
    return work, _shim(base / "bin"), {}


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_readme_example(block, session):
    """The README's other examples, in README order in one folder (later ones read what earlier
    ones wrote), on the real sets under IIS_DATA."""
    work, env, failed = session
    if failed:
        pytest.skip(f"an earlier example failed (README line {next(iter(failed))})")
    try:
        execute(block, work, env, timeout=600)
    except BaseException:
        failed[block.line] = True
        raise
