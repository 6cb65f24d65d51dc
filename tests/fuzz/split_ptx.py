#!/usr/bin/env python3
"""Splits PTX modules into one module per kernel, for the PTX fuzzer's seed corpus.

usage: split_ptx.py OUTDIR FILE.ptx...

Each output keeps everything at module scope (.version, .target, globals, .func definitions and
declarations) and one .entry, so it still parses and runs. Small seeds let the fuzzer keep
inputs short (-max_len) while still starting from every kernel the build compiles."""
import os
import sys


def top_level_items(text):
    """Yields the module-scope items of PTX text in order: directives ending in ';' and
    functions ending with their body's closing brace (comments go with the item after them)."""
    item, depth, i, n = [], 0, 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end + 1
            item.append(text[i:end])
            i = end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            item.append(text[i:end])
            i = end
            continue
        item.append(c)
        i += 1
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and "(" in "".join(item):  # a function body (initializers have no '(')
                yield "".join(item)
                item = []
        elif c == ";" and depth == 0:
            yield "".join(item)
            item = []
    if item:
        yield "".join(item)


def is_entry(item):
    head = item.split("{", 1)[0]
    return ".entry" in head


def main():
    outdir, files = sys.argv[1], sys.argv[2:]
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            items = list(top_level_items(f.read()))
        entries = [i for i, it in enumerate(items) if is_entry(it)]
        # Named like the whole-module copies: PARENT_NAME.kernelN.ptx (basic.ptx is in two folders).
        parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
        base = "%s_%s" % (parent, os.path.splitext(os.path.basename(path))[0])
        for k, keep in enumerate(entries):
            text = "".join(it for i, it in enumerate(items) if i == keep or not is_entry(it))
            with open(os.path.join(outdir, "%s.kernel%d.ptx" % (base, k)), "w") as out:
                out.write(text)


if __name__ == "__main__":
    main()
