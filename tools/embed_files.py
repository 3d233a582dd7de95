#!/usr/bin/env python3
"""Embeds the curators' web page (api/review/) into the API binary.

    tools/embed_files.py api/review build/gen/review_assets.c

Every regular file in the folder becomes one entry of cz_review_assets
(api/assets.h): its name, its media type (by extension; an unknown
extension fails the build) and its bytes as a C array. So the page the API
serves at /review/ is exactly the committed files, with no path to
configure and nothing read from disk at run time. Run by make; offline.
"""
import pathlib
import sys

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: embed_files.py DIR OUT.c")
    src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    files = sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
    if not any(p.name == "index.html" for p in files):
        sys.exit(f"embed_files: {src} has no index.html")
    lines = ["/* Generated from api/review/ by tools/embed_files.py: do not edit. */",
             '#include "../../api/assets.h"', ""]
    entries = []
    for i, p in enumerate(files):
        kind = TYPES.get(p.suffix)
        if not kind:
            sys.exit(f"embed_files: {p}: unknown file type {p.suffix!r}")
        if not all(c.isalnum() or c in "._-" for c in p.name):
            sys.exit(f"embed_files: {p}: use letters, digits, '.', '_' and '-' in names")
        data = p.read_bytes()
        # 24 bytes a line; a trailing 0 keeps a zero-length file legal C.
        lines.append(f"static const unsigned char file_{i}[] = {{")
        lines += ["    " + ",".join(str(b) for b in data[j:j + 24]) + ","
                  for j in range(0, len(data), 24)]
        lines.append("    0};")
        entries.append(f'    {{"{p.name}", "{kind}", file_{i}, {len(data)}}},')
    lines += ["", "const cz_asset cz_review_assets[] = {", *entries, "};",
              f"const size_t cz_review_assets_count = {len(files)};", ""]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(lines), encoding="ascii")


if __name__ == "__main__":
    main()
