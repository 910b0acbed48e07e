"""Shared by the benchmark scripts: write one section of benchmarks/README.md, keep the others."""

from __future__ import annotations

from pathlib import Path


def write_section(readme: Path, heading: str, text: str) -> None:
    """Replace (or append) the section under `heading`; every other section is kept as it is.

    The file is read just before writing: other benchmarks write their own sections to it.
    """
    old = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    lines = old.splitlines()
    out: list[str] = []
    i = 0
    replaced = False
    while i < len(lines):
        if lines[i].strip() == heading:
            out.extend(text.rstrip("\n").splitlines())
            replaced = True
            i += 1
            while i < len(lines) and not lines[i].startswith("## "):
                i += 1
            if i < len(lines):
                out.append("")
            continue
        out.append(lines[i])
        i += 1
    if not replaced:
        if out and out[-1].strip():
            out.append("")
        out.extend(text.rstrip("\n").splitlines())
    readme.write_text("\n".join(out) + "\n", encoding="utf-8")
