#!/usr/bin/env python3
"""Lists the Rust functions of product code longer than a bound (issue 21: no product function
over about 70 lines without a reason in its comment).

A function counts from its `fn` line to its closing brace. It is excused when the doc comment
or the comment lines just above it say why, with a line starting `Long:` (e.g. `/// Long: one
match over every RPC`). Test modules (`#[cfg(test)]` to the end of the file), tests/ and fuzz/
are not product code.

Usage: long-functions.py [--max N] [--check] [PATH...]   (default: the product crates, N = 70)
With --check, exits 1 when an unexcused function is over the bound.
"""
import argparse
import os
import re
import sys

PRODUCT = ["proto", "domain", "formats", "shared", "bank-node", "platform-node", "pair", "cli"]
FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)")


def strip(line, in_block):
    """The line with comments, strings and chars blanked, and whether a block comment goes on."""
    out = []
    i = 0
    in_str = False
    while i < len(line):
        c = line[i]
        nxt = line[i + 1] if i + 1 < len(line) else ""
        if in_block:
            if c == "*" and nxt == "/":
                in_block = False
                i += 2
                continue
            i += 1
            continue
        if in_str:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
            continue
        if c == "/" and nxt == "/":
            break
        if c == "/" and nxt == "*":
            in_block = True
            i += 2
            continue
        if c == '"':
            in_str = True
            i += 1
            continue
        if c == "'" and i + 2 < len(line) and (line[i + 2] == "'" or (nxt == "\\" and "'" in line[i + 2:i + 5])):
            j = line.index("'", i + 2) if nxt != "\\" else line.index("'", i + 3)
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out), in_block


def functions(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    end = len(lines)
    for n, l in enumerate(lines):
        if l.strip() == "#[cfg(test)]":
            end = n
            break
    found = []
    in_block = False
    n = 0
    while n < end:
        m = FN.match(lines[n])
        if not m:
            n += 1
            continue
        name = m.group(7)
        depth = 0
        opened = False
        k = n
        while k < end:
            code, in_block = strip(lines[k], in_block)
            if not opened and ";" in code and "{" not in code:
                break  # a declaration without a body
            depth += code.count("{") - code.count("}")
            if "{" in code:
                opened = True
            if opened and depth <= 0:
                break
            k += 1
        if opened:
            above = []
            j = n - 1
            while j >= 0 and (lines[j].strip().startswith(("///", "//", "#["))):
                above.append(lines[j].strip())
                j -= 1
            excused = any(re.match(r"^//+\s*Long:", a) for a in above)
            found.append((k - n + 1, name, n + 1, excused))
            n = k + 1
        else:
            n += 1
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=70)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("paths", nargs="*")
    a = ap.parse_args()
    roots = a.paths or PRODUCT
    rows = []
    for root in roots:
        for d, _, files in os.walk(root):
            if "/target" in d or "/tests" in d or d.endswith("tests"):
                continue
            for f in files:
                if f.endswith(".rs"):
                    p = os.path.join(d, f)
                    rows += [(length, p, line, name, ok) for length, name, line, ok in functions(p)]
    rows.sort(reverse=True)
    over = [r for r in rows if r[0] > a.max]
    for length, p, line, name, ok in over:
        print(f"{length:5} {p}:{line} {name}{'  (Long: reason given)' if ok else ''}")
    bad = [r for r in over if not r[4]]
    print(f"{len(over)} functions over {a.max} lines, {len(bad)} without a reason; longest {rows[0][0] if rows else 0}")
    if a.check and bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
