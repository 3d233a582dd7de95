#!/usr/bin/env python3
"""Converts api/openapi.yaml into a C file holding the document as JSON.

    tools/openapi_to_c.py api/openapi.yaml build/gen/openapi_json.c

The JSON is the YAML's data, serialised compactly with keys in the YAML's
order, so GET /openapi.json serves exactly the document the YAML describes.
Fails (non-zero, one line) when the YAML does not parse or is not an
OpenAPI 3.1 document. Run by make; offline, needs PyYAML only.
"""
import json
import sys

import yaml


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: openapi_to_c.py IN.yaml OUT.c")
    src, dst = sys.argv[1:]
    try:
        with open(src, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        sys.exit(f"openapi_to_c: {src}: {e}")
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1"):
        sys.exit(f"openapi_to_c: {src} is not an OpenAPI 3.1 document")
    text = json.dumps(doc, ensure_ascii=True, separators=(",", ":"))
    # C string literal chunks; ensure_ascii leaves only printable ASCII.
    chunks = []
    for i in range(0, len(text), 96):
        part = text[i:i + 96].replace("\\", "\\\\").replace('"', '\\"').replace("?", "\\?")
        chunks.append(f'    "{part}"')
    with open(dst, "w", encoding="ascii") as out:
        out.write("/* Generated from api/openapi.yaml by tools/openapi_to_c.py: do not edit. */\n")
        out.write('#include "../../api/openapi.h"\n\n')
        out.write("const char cz_openapi_json[] =\n" + "\n".join(chunks) + ";\n\n")
        out.write(f"const size_t cz_openapi_json_len = {len(text)};\n")


if __name__ == "__main__":
    main()
