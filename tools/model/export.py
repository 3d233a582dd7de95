"""Writes and reads CZTF weight files and the logits fixtures.

CZTF version 1 (docs/models/format.md): "CZTF", u32 version, u32 header
length H, H bytes of JSON, zero padding to a multiple of 64 bytes from the
start of the file, then the data section: every tensor as little-endian
float32 in the header's order, each at a 64-byte-aligned offset from the
start of the data, zero bytes between. data_bytes is the length of the data
section (it ends where the last tensor ends) and data_sha256 its hash. The
whole file's sha256 goes beside it in "<file>.sha256".

Usage:
  export.py fixture                       the small seeded model for the C unit tests
  export.py weights CHECKPOINT [--out F]  the trained model to F (default
                                          workers/models/neural/weights/neural-1.cztf)
                                          and its logits fixture beside it
  export.py check FILE [LOGITS.json]      read FILE back, verify hashes and
                                          (optionally) the logits
"""
import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vocab as V  # noqa: E402
from model import Config, Transformer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ALIGN = 64
WEIGHTS = os.path.join(ROOT, "workers/models/neural/weights/neural-1.cztf")
FIXTURE = os.path.join(ROOT, "tests/unit/data/neural_fixture.cztf")
FIXTURE_LOGITS = os.path.join(ROOT, "tests/unit/data/neural_fixture_logits.json")
FIXTURE_CONFIG = Config(d_model=32, n_layers=2, n_heads=4, d_ff=64, max_seq=64)


def _align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def write_cztf(path, model, trained):
    """Writes `model` to `path` and `path`.sha256; returns the file's sha256."""
    data = bytearray()
    entries = []
    for name, t in model.tensors():
        pad = _align(len(data)) - len(data)
        data += b"\0" * pad
        arr = t.detach().to(torch.float32).contiguous().numpy().astype("<f4")
        entries.append({"name": name, "shape": list(arr.shape), "offset": len(data)})
        data += arr.tobytes()
    c = model.c
    header = {
        "format": "cztf", "version": 1, "model": "neural", "model_version": "1",
        "config": {"vocab": c.vocab, "d_model": c.d_model, "n_layers": c.n_layers,
                   "n_heads": c.n_heads, "d_ff": c.d_ff, "max_seq": c.max_seq,
                   "ln_eps": c.ln_eps},
        "vocab": V.VOCAB,
        "tensors": entries,
        "data_bytes": len(data),
        "data_sha256": hashlib.sha256(data).hexdigest(),
        "trained": trained,
    }
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head = b"CZTF" + struct.pack("<II", 1, len(hjson)) + hjson
    head += b"\0" * (_align(len(head)) - len(head))
    blob = head + bytes(data)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)
    digest = hashlib.sha256(blob).hexdigest()
    with open(path + ".sha256", "w") as f:
        f.write(f"{digest}  {os.path.basename(path)}\n")
    return digest


def read_cztf(path):
    """(header, model) from a CZTF file; raises ValueError on any mismatch."""
    with open(path, "rb") as f:
        blob = f.read()
    side = path + ".sha256"
    if os.path.exists(side):
        want = open(side).read().split()[0]
        if hashlib.sha256(blob).hexdigest() != want:
            raise ValueError(f"{path}: file sha256 does not match {side}")
    if blob[:4] != b"CZTF":
        raise ValueError(f"{path}: not a CZTF file")
    version, hlen = struct.unpack_from("<II", blob, 4)
    if version != 1:
        raise ValueError(f"{path}: CZTF version {version}, expected 1")
    header = json.loads(blob[12:12 + hlen].decode("utf-8"))
    start = _align(12 + hlen)
    data = blob[start:start + header["data_bytes"]]
    if len(data) != header["data_bytes"] or len(blob) != start + header["data_bytes"]:
        raise ValueError(f"{path}: data section is {len(blob) - start} bytes, header says {header['data_bytes']}")
    if hashlib.sha256(data).hexdigest() != header["data_sha256"]:
        raise ValueError(f"{path}: data_sha256 does not match")
    if header["vocab"] != V.VOCAB:
        raise ValueError(f"{path}: vocabulary differs from tools/model/vocab.py")
    cfg = header["config"]
    model = Transformer(Config(**cfg))
    byname = dict(model.tensors())
    for e in header["tensors"]:
        t = byname.pop(e["name"])
        n = int(np.prod(e["shape"]))
        if e["offset"] % ALIGN:
            raise ValueError(f"{path}: tensor {e['name']} is not 64-byte aligned")
        arr = np.frombuffer(data, dtype="<f4", count=n, offset=e["offset"]).reshape(e["shape"])
        if list(t.shape) != e["shape"]:
            raise ValueError(f"{path}: tensor {e['name']} has shape {e['shape']}, expected {list(t.shape)}")
        with torch.no_grad():
            t.copy_(torch.from_numpy(arr.copy()))
    if byname:
        raise ValueError(f"{path}: missing tensors {sorted(byname)}")
    return header, model


def logits_for(model, sequences):
    model.eval()
    out = []
    with torch.no_grad():
        for seq in sequences:
            x = torch.tensor([seq], dtype=torch.long)
            out.append(model(x)[0].tolist())
    return out


def write_logits(path, model, sequences, tolerance=1e-4):
    logits = logits_for(model, sequences)
    doc = {"tokens": sequences,
           "token_names": [V.names(s) for s in sequences],
           "logits": [[[float(f"{v:.7g}") for v in row] for row in seq] for seq in logits],
           "tolerance": tolerance}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


def example_sequences(lengths):
    """Grammatical token sequences of the given lengths (prefixes of one piece)."""
    piece = V.ids(["BOS", "KEY_7", "MODE_MAJ", "METER_4_4", "TEMPO_MID", "DENSITY_MID", "SECTION_A"])
    melody = [(0, "CHORD_7_MAJ", [(0, 67, 4), (4, 71, 2), (6, 74, 2), (8, 72, 4), (12, 71, 4)]),
              (0, "CHORD_2_DOM7", [(0, 69, 4), (4, 66, 4), (8, 62, 8)]),
              (0, "CHORD_7_MAJ", [(0, 67, 2), (2, 69, 2), (4, 71, 4), (8, 74, 8)]),
              (0, "CHORD_0_MAJ", [(0, 76, 4), (4, 74, 4), (8, 72, 4), (12, 71, 4)])]
    for pos, chord, notes in melody:
        piece += V.ids(["BAR", f"POS_{pos}", chord])
        for p, pitch, dur in notes:
            piece += V.ids([f"POS_{p}", f"PITCH_{pitch}", f"DUR_{dur}"])
    piece += [V.EOS]
    return [piece[:n] for n in lengths]


def export_fixture():
    torch.manual_seed(1234)
    model = Transformer(FIXTURE_CONFIG)
    # Wider than the training init so the logits are far from uniform and a
    # wrong index or transpose in the C code shows up as a large error.
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(0.0, 0.3)
            if name.endswith("weight") and ("ln" in name):
                p.add_(1.0)
    trained = {"kind": "fixture", "note": "seeded random init (torch.manual_seed(1234), "
               "N(0, 0.3), LayerNorm weights 1 + N(0, 0.3)); not trained",
               "torch": torch.__version__}
    digest = write_cztf(FIXTURE, model, trained)
    write_logits(FIXTURE_LOGITS, model, example_sequences([1, 7, 40]))
    print(f"wrote {FIXTURE} ({digest}) and {FIXTURE_LOGITS}")


def export_weights(checkpoint, out):
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = Transformer(Config(**ck["config"]))
    model.load_state_dict(ck["model"])
    trained = dict(ck.get("trained", {}))
    trained["torch"] = torch.__version__
    digest = write_cztf(out, model, trained)
    logits = os.path.splitext(out)[0] + ".logits.json"
    write_logits(logits, model, example_sequences([7, 30]))
    print(f"wrote {out} ({os.path.getsize(out)} bytes, sha256 {digest}) and {logits}")


def check(path, logits_path=None):
    header, model = read_cztf(path)
    print(f"{path}: ok, {sum(p.numel() for p in model.parameters())} parameters, "
          f"trained={json.dumps(header.get('trained'))}")
    if logits_path:
        doc = json.load(open(logits_path))
        got = logits_for(model, doc["tokens"])
        worst = max(abs(a - b) for s1, s2 in zip(got, doc["logits"])
                    for r1, r2 in zip(s1, s2) for a, b in zip(r1, r2))
        print(f"{logits_path}: max |diff| {worst:.3g} (tolerance {doc['tolerance']})")
        if worst > doc["tolerance"]:
            sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fixture")
    w = sub.add_parser("weights")
    w.add_argument("checkpoint")
    w.add_argument("--out", default=WEIGHTS)
    c = sub.add_parser("check")
    c.add_argument("file")
    c.add_argument("logits", nargs="?")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.cmd == "fixture":
        export_fixture()
    elif a.cmd == "weights":
        export_weights(a.checkpoint, a.out)
    else:
        check(a.file, a.logits)


if __name__ == "__main__":
    main()
