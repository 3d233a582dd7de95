#!/usr/bin/env python3
"""Reports dependency cycles between Cadenza's C files.

    python3 tools/check_cycles.py [BUILD_DIR]     (default: build)

Run after `make all`. Two graphs are checked:

  files    one node per product source file (api/, scheduler/, workers/,
           cli/, common/), read from its compiled object under BUILD_DIR:
           a.c depends on b.c when a.o uses a global symbol that b.o
           defines (nm: undefined in one, defined in the other). Symbols
           nobody in the product defines come from libraries and are left
           out.
  headers  one node per product header: a.h depends on b.h when it
           includes it with #include "b.h".

A cycle is a strongly connected component of more than one node: files
that call each other, directly or round a loop, cannot be read, tested or
moved one at a time. Each is printed with the edges inside it and, for
files, the symbols that make each edge. Exits 1 when there is a cycle, 2
when there is nothing to check, else 0.

Python 3 standard library only; needs `nm` (binutils) on the PATH."""

import os
import re
import subprocess
import sys

PRODUCT_DIRS = ("api", "scheduler", "workers", "cli", "common")


def objects(build, root):
    """Yields (object path, source path) for every product object whose
    source still exists: an object left behind by a moved file is stale."""
    for top in PRODUCT_DIRS:
        for d, dirs, files in os.walk(os.path.join(build, top)):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".o"):
                    obj = os.path.join(d, name)
                    stem = os.path.relpath(obj, build)[: -len(".o")]
                    for src in (stem + ".c", stem + ".cu"):  # .cu: CUDA, where nvcc built it
                        if os.path.isfile(os.path.join(root, src)):
                            yield obj, src
                            break


def symbols(obj):
    """Returns (defined, undefined) global symbol sets of one object."""
    out = subprocess.run(
        ["nm", "-P", obj], check=True, capture_output=True, text=True
    ).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind in ("U", "w", "v"):
            undefined.add(name)
        elif kind.isupper():
            defined.add(name)
    return defined, undefined


def binary_of(src):
    """The folder that names a file's binary: common/ serves them all."""
    return src.split("/", 1)[0]


def file_graph(build, root):
    """Returns ({file: {file: set(symbols)}}, number of files, ambiguous)."""
    defs, uses = {}, {}
    for obj, src in objects(build, root):
        d, u = symbols(obj)
        uses[src] = u
        for name in d:
            defs.setdefault(name, []).append(src)
    graph = {src: {} for src in uses}
    ambiguous = set()
    for src, used in uses.items():
        for name in used:
            owners = defs.get(name)
            if not owners:
                continue  # a library's symbol
            # The same name may be defined once per binary (main, say): a
            # reference resolves to the definition its own binary links.
            if len(owners) > 1:
                same = [o for o in owners if binary_of(o) == binary_of(src)]
                shared = [o for o in owners if binary_of(o) == "common"]
                owners = same or shared or owners
                if len(owners) > 1:
                    ambiguous.add(name)
            for owner in owners:
                if owner != src:
                    graph[src].setdefault(owner, set()).add(name)
    return graph, len(uses), ambiguous


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def header_graph(root):
    """Returns {header: {header: set()}} from the quoted includes of headers."""
    headers = set()
    for top in PRODUCT_DIRS:
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs.sort()
            headers.update(
                os.path.relpath(os.path.join(d, f), root)
                for f in files
                if f.endswith(".h")
            )
    graph = {h: {} for h in headers}
    for h in sorted(headers):
        with open(os.path.join(root, h), encoding="utf-8", errors="replace") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            # Root-relative first (-I.), then beside the header.
            for cand in (inc, os.path.normpath(os.path.join(os.path.dirname(h), inc))):
                if cand in headers:
                    if cand != h:
                        graph[h].setdefault(cand, set())
                    break
    return graph


def components(graph):
    """Tarjan's strongly connected components, iteratively; only those of
    more than one node, each sorted, in a stable order."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    n = stack.pop()
                    on_stack.discard(n)
                    comp.append(n)
                    if n == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return sorted(found)


def report(kind, graph, comps, with_symbols):
    for i, comp in enumerate(comps, 1):
        members = set(comp)
        print(f"{kind} cycle {i}: {len(comp)} {kind}")
        for a in comp:
            for b in sorted(graph[a]):
                if b in members:
                    syms = ""
                    if with_symbols:
                        syms = ": " + ", ".join(sorted(graph[a][b]))
                    print(f"  {a} -> {b}{syms}")


def main(argv):
    build = argv[1] if len(argv) > 1 else "build"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if len(argv) > 2 or not os.path.isdir(build):
        print(f"usage: {argv[0]} [BUILD_DIR] (run after make all)", file=sys.stderr)
        return 2
    graph, n_files, ambiguous = file_graph(build, root)
    if n_files == 0:
        print(f"check_cycles: no product objects under {build}/; run make all first",
              file=sys.stderr)
        return 2
    hgraph = header_graph(root)
    fcomps, hcomps = components(graph), components(hgraph)
    report("files", graph, fcomps, True)
    report("headers", hgraph, hcomps, False)
    for name in sorted(ambiguous):
        print(f"note: {name} is defined in more than one file of one binary")
    print(
        f"check_cycles: {len(fcomps)} file cycle(s) among {n_files} files, "
        f"{len(hcomps)} header cycle(s) among {len(hgraph)} headers"
    )
    return 1 if fcomps or hcomps else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
