#!/usr/bin/env python3
"""A small reference model server for http@1 and http@2.

http@1 (contract: docs/composer.md) is one blocking POST per job; http@2
(contract: docs/http2.md) is asynchronous: predictions submitted in
batches, followed over server-sent events, canceled, found again by their
idempotency key, fetched when done.

The tests start it (unit tests through tests/unit/test_backend.c, system
tests through tests/system/test_composer.py) and point the inference worker
at it. It answers POST /v1/generate with a deterministic tune for the
request's seed: a pentatonic melody of sine notes over a soft click on every
beat of the requested tempo, 48 kHz stereo 16-bit, exactly the requested
length. It misbehaves on request, so the worker's failure classes can be
tested; a prompt containing one of these words picks the behaviour:

    reference:unavailable   503 with Retry-After
    reference:fail-first    503 on the job's first attempt, a tune on later ones
    reference:slow          waits 30 s before answering
    reference:garbage       200 with a body that is not audio
    reference:short         200 with half the requested audio
    reference:error         500 with a problem document
    reference:mono          200 with one channel (valid: the worker widens it)

The server models one GPU: one batch runs at a time, and a batch of n
items costs --batch-cost-s plus n times --item-cost-s (slept, in ten steps
that are the predictions' progress), so n jobs in one batch finish sooner
than n jobs one by one. http@1's /v1/generate is a batch of one on the same
GPU. http@2's misbehaviour, by prompt word or flag:

    reference:slow          the batch holding it waits 15 s before it reaches the
                            GPU (other batches go on meanwhile)
    reference:error         the prediction fails with type model_error
    reference:unavailable   POST /v1/predictions answers 503
    reference:oom           the batch holding it fails with oom, whatever its size
    --oom-above N           every batch of more than N items fails with oom

GET /v1/stats counts what the server did, for the tests: predictions
created and started (in all, and per idempotency key), the batches run
(size, outcome), the predictions canceled.

Usage: reference_model.py [--host 127.0.0.1] [--port 0] [--version V]
[--max-batch 8] [--oom-above N] [--batch-cost-s S] [--item-cost-s S]; it
prints "listening on <port>" once it accepts connections. Standard library
only.
"""
import argparse
import array
import io
import json
import math
import random
import sys
import threading
import time
import uuid
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATE = 48000
VERSION = "reference-1"
CONTRACT2 = "cadenza.predict/2"
MODEL2 = "reference"
SLOW_S = 15
TERMINAL = ("succeeded", "failed", "canceled")
# What the model declares it takes: name -> type, range, default.
PARAMETERS = {
    "temperature": {"type": "number", "minimum": 0.1, "maximum": 2.0, "default": 1.0,
                    "description": "how adventurous the melody is (scales the note choice)"},
    "top_p": {"type": "number", "minimum": 0.05, "maximum": 1.0, "default": 1.0,
              "description": "the share of the scale the melody may use"},
    "guidance": {"type": "number", "minimum": 0.0, "maximum": 20.0, "default": 3.0,
                 "description": "how loud the beat clicks are against the melody"},
}


def tune(seed, seconds, bpm, channels=2, params=None):
    """A deterministic melody for the seed (and the http@2 parameters), as
    16-bit PCM WAV bytes. The parameters change the music: top_p keeps a
    share of the scale, temperature widens the leaps, guidance the clicks."""
    params = params or {}
    rnd = random.Random(seed)
    frames = int(round(seconds * RATE))
    beat = 60.0 / bpm
    scale = [0, 2, 4, 7, 9, 12, 14]
    scale = scale[:max(2, int(round(len(scale) * params.get("top_p", 1.0))))]
    spread = params.get("temperature", 1.0)
    scale = [int(round(x * spread)) for x in scale]
    click = 12000 * params.get("guidance", 3.0) / 3.0
    root = 57 + rnd.randrange(12)
    samples = array.array("h", bytes(2 * frames * channels))
    t = 0.0
    while t < seconds:
        length = beat * rnd.choice([0.5, 1, 1, 2])
        freq = 440.0 * 2 ** ((root + rnd.choice(scale) - 69) / 12)
        start, end = int(t * RATE), min(frames, int((t + length) * RATE))
        for i in range(start, end):
            k = i - start
            env = min(1.0, k / 240) * math.exp(-3.0 * k / RATE)
            v = int(9000 * env * math.sin(2 * math.pi * freq * k / RATE))
            for c in range(channels):
                samples[i * channels + c] = v
        t += length
    # A click on every beat, so the tempo is plain to a beat tracker.
    n = 0
    while n * beat < seconds:
        start = int(n * beat * RATE)
        for k in range(min(480, frames - start)):
            v = int(click * math.exp(-k / 60.0) * math.sin(2 * math.pi * 1000 * k / RATE))
            for c in range(channels):
                i = (start + k) * channels + c
                samples[i] = max(-32768, min(32767, samples[i] + v))
        n += 1
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return out.getvalue()


class Gpu:
    """One GPU: a batch runs at a time; the predictions and the counters."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()          # the GPU: one batch at a time
        self.changed = threading.Condition()  # guards everything below
        self.predictions = {}                 # id -> prediction (a dict)
        self.by_key = {}                      # idempotency key -> id of its latest prediction
        self.stats = {"predictions_created": 0, "predictions_started": 0, "created_by_key": {},
                      "started_by_key": {}, "batches": [], "canceled": [], "generate_calls": 0}

    def cost(self, n):
        return self.args.batch_cost_s + n * self.args.item_cost_s

    def public(self, p):
        out = {k: v for k, v in p.items() if not k.startswith("_")}
        return out

    def submit(self, items):
        """Creates the predictions not already known by key; starts their batch.
        Returns [(prediction, created)]."""
        out, new = [], []
        with self.changed:
            for it in items:
                old = self.predictions.get(self.by_key.get(it["key"]))
                if old and old["status"] not in ("failed", "canceled"):
                    out.append((self.public(old), False))
                    continue
                pid = "p_" + uuid.uuid4().hex[:20]
                p = {"id": pid, "key": it["key"], "model": MODEL2, "version": self.args.version,
                     "status": "queued", "progress": 0.0, "created_at": time.time(),
                     "started_at": None, "completed_at": None, "error": None, "output": None,
                     "batch": None, "_input": it, "_audio": None}
                self.predictions[pid] = p
                self.by_key[it["key"]] = pid
                st = self.stats
                st["predictions_created"] += 1
                st["created_by_key"][it["key"]] = st["created_by_key"].get(it["key"], 0) + 1
                new.append(p)
                out.append((self.public(p), True))
            if new:
                bid = "b_" + uuid.uuid4().hex[:12]
                for p in new:
                    p["batch"] = {"id": bid, "size": len(new)}
                out = [(self.public(self.predictions[o["id"]]), c) for o, c in out]
        if new:
            threading.Thread(target=self.run, args=(new,), daemon=True).start()
        return out

    def set(self, p, **fields):
        with self.changed:
            p.update(fields)
            self.changed.notify_all()

    def run(self, batch):
        """Renders a batch in one pass on the GPU."""
        prompts = " ".join(str(p["_input"].get("prompt", "")) for p in batch)
        if "reference:slow" in prompts:
            # Slow before the GPU (a long queue, say), so other batches go on.
            self.start([p for p in batch if p["status"] == "queued"])
            for step in range(1, 31):
                time.sleep(SLOW_S / 30)
                with self.changed:
                    live = [p for p in batch if p["status"] == "running"]
                    for p in live:
                        p["progress"] = step / 30 * 0.5
                    self.changed.notify_all()
                if not live:
                    return
        with self.lock:
            if "reference:slow" not in prompts:
                self.start([p for p in batch if p["status"] == "queued"])
            live = [p for p in batch if p["status"] == "running"]
            if not live:
                return
            record = {"id": live[0]["batch"]["id"], "size": len(live), "outcome": "succeeded"}
            oom = self.args.oom_above and len(live) > self.args.oom_above
            if oom or "reference:oom" in prompts:
                time.sleep(self.args.batch_cost_s / 2)  # it fails part way in
                record["outcome"] = "oom"
                with self.changed:
                    self.stats["batches"].append(record)
                    for p in live:
                        if p["status"] == "running":
                            p.update(status="failed", completed_at=time.time(),
                                     error={"type": "oom", "detail":
                                            f"out of GPU memory in a batch of {len(live)} "
                                            f"(this server fits {self.args.oom_above or 1}); "
                                            f"submit fewer at once"})
                    self.changed.notify_all()
                return
            total = self.cost(len(live))
            base = live[0]["progress"]
            for step in range(1, 11):
                time.sleep(total / 10)
                with self.changed:
                    for p in live:
                        if p["status"] == "running":
                            p["progress"] = base + (0.9 - base) * step / 10
                    self.changed.notify_all()
                if all(p["status"] != "running" for p in live):
                    return  # all canceled: the GPU is free again
            for p in live:
                if p["status"] != "running":
                    continue
                it = p["_input"]
                if "reference:error" in str(it.get("prompt", "")):
                    self.set(p, status="failed", completed_at=time.time(),
                             error={"type": "model_error",
                                    "detail": "the reference model failed on purpose"})
                    continue
                bpm = float((it.get("controls") or {}).get("tempo_bpm", 120))
                audio = tune(int(it["seed"]), float(it["duration_s"]), bpm, 2,
                             it.get("parameters") or {})
                self.set(p, _audio=audio, status="succeeded", progress=1.0,
                         completed_at=time.time(),
                         output={"url": f"/v1/predictions/{p['id']}/output",
                                 "content_type": "audio/wav", "bytes": len(audio),
                                 "duration_s": float(it["duration_s"])})
            with self.changed:
                self.stats["batches"].append(record)

    def start(self, batch):
        """Marks queued predictions running and counts them as started."""
        now = time.time()
        with self.changed:
            for p in batch:
                p.update(status="running", started_at=now)
                st = self.stats
                st["predictions_started"] += 1
                st["started_by_key"][p["key"]] = st["started_by_key"].get(p["key"], 0) + 1
            self.changed.notify_all()

    def cancel(self, pid):
        with self.changed:
            p = self.predictions.get(pid)
            if p and p["status"] not in TERMINAL:
                p.update(status="canceled", completed_at=time.time())
                self.stats["canceled"].append(pid)
                self.changed.notify_all()
            return self.public(p) if p else None


def check_input(it, i):
    """None, or why item i of a POST /v1/predictions is not one."""
    try:
        assert isinstance(it, dict)
        key = it["key"]
        assert isinstance(key, str) and 1 <= len(key) <= 255
        seconds = float(it["duration_s"])
        assert 0 < seconds <= 600 and it.get("sample_rate", RATE) == RATE
        int(it["seed"])
    except (ValueError, KeyError, AssertionError, TypeError):
        return f"inputs[{i}] needs a key, a seed and duration_s (0-600) at 48000 Hz"
    params = it.get("parameters") or {}
    if not isinstance(params, dict):
        return f"inputs[{i}].parameters must be an object"
    for name, v in params.items():
        d = PARAMETERS.get(name)
        if not d:
            return f"inputs[{i}].parameters.{name}: {MODEL2} declares no such parameter"
        if not isinstance(v, (int, float)) or isinstance(v, bool) or \
                not d["minimum"] <= v <= d["maximum"]:
            return f"inputs[{i}].parameters.{name} must be {d['minimum']}..{d['maximum']}"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the tests read stdout
        sys.stderr.write("reference_model: " + fmt % args + "\n")

    def reply(self, status, body, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def json(self, status, obj, headers=None):
        self.reply(status, json.dumps(obj).encode(), "application/json", headers)

    def problem(self, status, detail, ptype="about:blank", headers=None):
        body = json.dumps({"type": ptype, "status": status, "detail": detail}).encode()
        self.reply(status, body, "application/problem+json", headers)

    def body(self):
        length = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(length))

    def do_GET(self):
        gpu = self.server.gpu
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        if path == "/healthz":
            self.reply(200, b"ok\n", "text/plain")
        elif path == "/v1/health":
            with gpu.changed:
                busy = sum(p["status"] in ("queued", "running") for p in gpu.predictions.values())
            self.json(200, {"status": "ok", "contract": CONTRACT2, "pending": busy})
        elif path == "/v1/models":
            self.json(200, {"contract": CONTRACT2, "models": [{
                "name": MODEL2, "version": self.server.version,
                "max_batch": self.server.args.max_batch, "sample_rate": RATE, "channels": 2,
                "max_duration_s": 600, "parameters": PARAMETERS}]})
        elif path == "/v1/stats":
            with gpu.changed:
                self.json(200, gpu.stats)
        elif len(parts) >= 3 and parts[:2] == ["v1", "predictions"]:
            with gpu.changed:
                p = gpu.predictions.get(parts[2])
                p = dict(p) if p else None
            if not p:
                return self.problem(404, "no such prediction")
            if len(parts) == 3:
                return self.json(200, gpu.public(p))
            if parts[3:] == ["output"]:
                if p["status"] != "succeeded":
                    return self.problem(409, f"prediction is {p['status']}, not succeeded")
                return self.reply(200, p["_audio"], "audio/wav",
                                  {"X-Model-Version": self.server.version})
            if parts[3:] == ["events"]:
                return self.events(p["id"])
            self.problem(404, "no such path")
        else:
            self.problem(404, "no such path")

    def events(self, pid):
        """Server-sent events: progress while it runs, then its end, then close."""
        gpu = self.server.gpu
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        last, last_sent = None, time.monotonic()
        try:
            while True:
                with gpu.changed:
                    p = gpu.predictions[pid]
                    if (p["status"], p["progress"]) == last:
                        gpu.changed.wait(timeout=1.0)
                    snap = gpu.public(p)
                state = (snap["status"], snap["progress"])
                if state != last:
                    ev = snap["status"] if snap["status"] in TERMINAL else "progress"
                    self.wfile.write(f"event: {ev}\ndata: {json.dumps(snap)}\n\n".encode())
                    self.wfile.flush()
                    last, last_sent = state, time.monotonic()
                    if ev != "progress":
                        return
                elif time.monotonic() - last_sent > 5:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    last_sent = time.monotonic()
        except (BrokenPipeError, ConnectionResetError):
            return

    def do_DELETE(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 3 or parts[:2] != ["v1", "predictions"]:
            return self.problem(404, "no such path")
        p = self.server.gpu.cancel(parts[2])
        if not p:
            return self.problem(404, "no such prediction")
        self.json(200, p)

    def do_POST(self):
        if self.path == "/v1/predictions":
            return self.predictions()
        if self.path != "/v1/generate":
            return self.problem(404, "no such path")
        gpu = self.server.gpu
        with gpu.changed:
            gpu.stats["generate_calls"] += 1
        length = int(self.headers.get("Content-Length", "0"))
        try:
            req = json.loads(self.rfile.read(length))
            assert req["contract"] == "cadenza.generate/1"
            seconds = float(req["duration_s"])
            assert req["sample_rate"] == RATE and req["channels"] == 2 and 0 < seconds <= 600
            seed = int(req["seed"])
        except (ValueError, KeyError, AssertionError, TypeError):
            return self.problem(400, "not a cadenza.generate/1 request")
        prompt = str(req.get("prompt", ""))
        bpm = float(req.get("controls", {}).get("tempo_bpm", 120))
        first_attempt = int(req.get("attempt", 1)) == 1
        if "reference:unavailable" in prompt or ("reference:fail-first" in prompt and first_attempt):
            return self.reply(503, b"busy\n", "text/plain", {"Retry-After": "1"})
        if "reference:error" in prompt:
            return self.problem(500, "the reference model failed on purpose")
        if "reference:garbage" in prompt:
            return self.reply(200, b"this is not audio\n" * 10, "audio/wav")
        if "reference:slow" in prompt:
            time.sleep(30)
        if "reference:short" in prompt:
            seconds /= 2
        channels = 1 if "reference:mono" in prompt else 2
        with gpu.lock:  # a batch of one on the same GPU as http@2's batches
            time.sleep(gpu.cost(1))
            body = tune(seed, seconds, bpm, channels)
        self.reply(200, body, "audio/wav", {"X-Model-Version": self.server.version})

    def predictions(self):
        """POST /v1/predictions: a batch of inputs, each named by its key."""
        args = self.server.args
        try:
            req = self.body()
            assert isinstance(req, dict) and req.get("contract") == CONTRACT2
            items = req["inputs"]
            assert isinstance(items, list) and items
        except (ValueError, KeyError, AssertionError, TypeError):
            return self.problem(400, f"not a {CONTRACT2} request: contract, model, inputs[]",
                                "urn:cadenza:problem:bad-request")
        if req.get("model", MODEL2) != MODEL2:
            return self.problem(404, f"no model {req.get('model')!r}; this server has {MODEL2}",
                                "urn:cadenza:problem:unknown-model")
        if len(items) > args.max_batch:
            return self.problem(413, f"{len(items)} inputs; at most {args.max_batch} at once",
                                "urn:cadenza:problem:batch-too-large")
        for i, it in enumerate(items):
            why = check_input(it, i)
            if why:
                return self.problem(422, why, "urn:cadenza:problem:invalid-input")
        if any("reference:unavailable" in str(it.get("prompt", "")) for it in items):
            return self.problem(503, "the reference model is unavailable on purpose",
                                "urn:cadenza:problem:unavailable", {"Retry-After": "1"})
        out = self.server.gpu.submit(items)
        created = any(c for _, c in out)
        self.json(202 if created else 200,
                  {"predictions": [dict(p, created=c) for p, c in out]})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--version", default=VERSION, help="what X-Model-Version says")
    ap.add_argument("--max-batch", type=int, default=8, help="http@2: inputs per POST")
    ap.add_argument("--oom-above", type=int, default=0,
                    help="http@2: batches of more inputs than this fail with oom (0: never)")
    ap.add_argument("--batch-cost-s", type=float, default=0.2, help="GPU time of any batch")
    ap.add_argument("--item-cost-s", type=float, default=0.02, help="GPU time per item")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.version = args.version
    server.args = args
    server.gpu = Gpu(args)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
