"""Trains neural@1 on the extracted corpus (build/model/data/pieces.jsonl).

Reproducible: one seed drives the data order, the initialisation and
dropout; torch runs deterministic algorithms on 2 threads, so the same
seed, step count and machine type give the same weights.

Data: the train split, each sequence in every transposition of -5..+6
semitones whose pitches stay in 36..96 (augmentation on tokens, see
vocab.transpose). Each epoch the sequences are shuffled and packed greedily
into rows of max_seq tokens; a token attends only to its own sequence and
positions restart at 0 for each (model.forward's docs/positions), so packing
does not change what the model sees at inference. The val split is scored
untransposed: the loss log scores a fixed shuffled part of it (--val-rows
rows of 512 tokens), the checkpoint's "val_bits_per_token" all of it.

Optimiser: AdamW (betas 0.9/0.98, weight decay 0.1 on matrices, none on
embeddings, norms and biases), linear warmup then cosine decay to 10% of
the peak rate, gradient clipping at 1.0, dropout on the residual branches
and embeddings during training only (the exported computation has none).

Trains --steps steps. After 30 steps (in warmup, where the learning rate
does not depend on the total) it times them; if --steps would overrun
--max-minutes it trains fewer, sized to fit, and the run is then the same as
one started with that --steps (the checkpoint records it). If the machine
slows down later, the clock still stops it at --max-minutes (the schedule is
then cut short and the checkpoint says so). Writes the checkpoint,
the loss log (CSV: step, seconds, lr, train and val loss in nats, val bits
per token) and a PNG plot of it.

Usage: train.py [--steps N] [--max-minutes M] [--batch B] [--seed S]
                [--data build/model/data] [--out build/model/neural-1.pt]
                [--log docs/models/neural-1-loss.csv] [--note TEXT]
"""
import argparse
import csv
import datetime
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vocab as V  # noqa: E402
from model import Config, Transformer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHIFTS = range(-5, 7)
CALIBRATE = 30


def load_split(data_dir, split):
    seqs = []
    with open(os.path.join(data_dir, "pieces.jsonl")) as f:
        for line in f:
            p = json.loads(line)
            if p["split"] == split:
                seqs += p["seqs"]
    return seqs


def augment(seqs):
    out = []
    for s in seqs:
        for k in SHIFTS:
            t = V.transpose(s, k)
            if t is not None:
                out.append(t)
    return out


def pack(seqs, max_seq, rng):
    """Rows of (tokens, targets, positions, docs), each max_seq long."""
    order = list(range(len(seqs)))
    if rng is not None:
        rng.shuffle(order)
    rows, cur = [], []
    used = 0
    for i in order:
        s = seqs[i]
        if used + len(s) > max_seq:
            rows.append(cur)
            cur, used = [], 0
        cur.append(s)
        used += len(s)
    if cur:
        rows.append(cur)
    out = []
    for row in rows:
        tok = np.zeros(max_seq, np.int64)
        tgt = np.full(max_seq, -100, np.int64)
        pos = np.zeros(max_seq, np.int64)
        doc = np.full(max_seq, -1, np.int64)
        at = 0
        for d, s in enumerate(row):
            n = len(s)
            tok[at:at + n] = s
            tgt[at:at + n - 1] = s[1:]
            pos[at:at + n] = np.arange(n)
            doc[at:at + n] = d
            at += n
        # Padding attends to itself only, so no row of the mask is empty.
        doc[at:] = np.arange(1000, 1000 + max_seq - at)
        out.append((tok, tgt, pos, doc))
    return out


def batches(rows, batch):
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        yield tuple(torch.from_numpy(np.stack([r[k] for r in chunk])) for k in range(4))


class Dropout(nn.Module):
    """Wraps a Transformer so training adds dropout to the residual branches."""

    def __init__(self, model, p):
        super().__init__()
        self.m, self.p = model, p
        if p > 0:
            for layer in model.layers:
                layer.wo.register_forward_hook(self._hook)
                layer.w2.register_forward_hook(self._hook)
            model.tok_emb.register_forward_hook(self._hook)

    def _hook(self, module, inp, out):
        return F.dropout(out, self.p, True) if module.training else out


def evaluate(model, rows, batch=8):
    """Mean next-token loss in nats over all target tokens of rows."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for tok, tgt, pos, doc in batches(rows, batch):
            logits = model(tok, pos, doc)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), tgt.view(-1),
                                   ignore_index=-100, reduction="sum")
            total += loss.item()
            count += int((tgt != -100).sum())
    model.train()
    return total / max(1, count)


def lr_at(step, steps, warmup, peak):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def plot(log_path, png_path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return
    rows = list(csv.DictReader(open(log_path)))
    if not rows:
        return
    step = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(step, [float(r["train_loss"]) / math.log(2) for r in rows], label="train")
    ax.plot(step, [float(r["val_loss"]) / math.log(2) for r in rows], label="val")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per token")
    ax.set_title("neural@1 loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "build/model/data"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build/model/neural-1.pt"))
    ap.add_argument("--log", default=os.path.join(ROOT, "docs/models/neural-1-loss.csv"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--max-minutes", type=float, default=75.0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--val-rows", type=int, default=64, help="val rows scored at each log line")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--note", default="")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    t0 = time.time()

    cfg = Config()
    train = augment(load_split(a.data, "train"))
    val_rows = pack(load_split(a.data, "val"), cfg.max_seq, random.Random(a.seed + 1))
    # The loss log scores a fixed part of val; the checkpoint all of it.
    val_probe = val_rows[:a.val_rows]
    n_train_tokens = sum(len(s) for s in train)
    print(f"train: {len(train)} sequences, {n_train_tokens} tokens (12 transpositions); "
          f"val: {len(val_rows)} rows", flush=True)

    model = Transformer(cfg)
    model.set_fused(True)
    wrapped = Dropout(model, a.dropout)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "emb" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "emb" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98), eps=1e-8)
    rng = random.Random(a.seed)
    os.makedirs(os.path.dirname(a.log), exist_ok=True)
    logf = open(a.log, "w", newline="")
    log = csv.writer(logf)
    log.writerow(["step", "seconds", "lr", "tokens", "train_loss", "val_loss", "val_bits_per_token"])
    model.train()
    wrapped.train()

    step, tokens, epoch = 0, 0, 0
    run_loss, run_n = 0.0, 0
    stopped_early = False
    while step < a.steps:
        rows = pack(train, cfg.max_seq, rng)
        epoch += 1
        for tok, tgt, pos, doc in batches(rows, a.batch):
            if step >= a.steps:
                break
            if (time.time() - t0) / 60 > a.max_minutes:
                stopped_early = True
                break
            if step == CALIBRATE and a.steps > CALIBRATE and a.max_minutes > 0:
                # Fit the schedule to the time budget, while still in warmup
                # (where the rate does not depend on the step count), so the
                # run equals one started with --steps at the new count.
                per_step = (time.time() - t_cal) / CALIBRATE * 1.04  # + evaluations
                room = a.max_minutes * 60 * 0.97 - (time.time() - t0) - 60  # final val and save
                fit = CALIBRATE + int(room / per_step)
                if fit < a.steps:
                    print(f"{per_step:.2f}s a step: {a.steps} steps do not fit {a.max_minutes} minutes, "
                          f"training {fit} (same as --steps {fit})", flush=True)
                    a.steps = fit
            if step == 0:
                t_cal = time.time()
            lr = lr_at(step, a.steps, a.warmup, a.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            logits = model(tok, pos, doc)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), tgt.view(-1), ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            tokens += int((tgt != -100).sum())
            run_loss += loss.item()
            run_n += 1
            if step % a.eval_every == 0 or step == a.steps:
                vl = evaluate(model, val_probe)
                el = time.time() - t0
                log.writerow([step, round(el, 1), f"{lr:.3e}", tokens, f"{run_loss / run_n:.4f}",
                              f"{vl:.4f}", f"{vl / math.log(2):.4f}"])
                logf.flush()
                print(f"step {step} epoch {epoch} {el:.0f}s lr {lr:.2e} train {run_loss / run_n:.3f} "
                      f"val {vl:.3f} nats ({vl / math.log(2):.3f} bits)", flush=True)
                run_loss, run_n = 0.0, 0
        if stopped_early:
            break
    if run_n:
        vl = evaluate(model, val_probe)
        log.writerow([step, round(time.time() - t0, 1), f"{lr:.3e}", tokens, f"{run_loss / run_n:.4f}",
                      f"{vl:.4f}", f"{vl / math.log(2):.4f}"])
    val_final = evaluate(model, val_rows)
    logf.close()
    elapsed = time.time() - t0
    summary = json.load(open(os.path.join(a.data, "summary.json")))
    trained = {
        "kind": "trained", "note": a.note,
        "corpus": "music21 corpus: Bach chorales, Ryan's Mammoth Collection, O'Neill's 1850, Aird's Airs "
                  "(manifest: docs/models/neural-1-data.tsv)",
        "music21": summary.get("music21"), "pieces": summary.get("pieces"),
        "train_sequences": len(train), "train_tokens_per_epoch": n_train_tokens,
        "steps": step, "steps_planned": a.steps, "stopped_early_by_time": stopped_early,
        "epochs": round(tokens / max(1, n_train_tokens), 3), "tokens_seen": tokens,
        "batch": a.batch, "max_seq": cfg.max_seq, "lr": a.lr, "warmup": a.warmup,
        "dropout": a.dropout, "seed": a.seed, "threads": a.threads,
        "val_loss_nats": round(val_final, 4), "val_bits_per_token": round(val_final / math.log(2), 4),
        "train_seconds": round(elapsed, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    torch.save({"config": cfg.as_dict(), "model": model.state_dict(), "trained": trained}, a.out)
    plot(a.log, os.path.splitext(a.log)[0] + ".png")
    print(json.dumps(trained, indent=1))


if __name__ == "__main__":
    main()
