#!/usr/bin/env python3
"""A small reference model server for http@1 (contract: docs/composer.md).

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

Usage: reference_model.py [--host 127.0.0.1] [--port 0] [--version V]; it prints
"listening on <port>" once it accepts connections. Standard library only.
"""
import argparse
import array
import io
import json
import math
import random
import sys
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATE = 48000
VERSION = "reference-1"


def tune(seed, seconds, bpm, channels=2):
    """A deterministic melody for the seed, as 16-bit PCM WAV bytes."""
    rnd = random.Random(seed)
    frames = int(round(seconds * RATE))
    beat = 60.0 / bpm
    scale = [0, 2, 4, 7, 9, 12, 14]
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
            v = int(12000 * math.exp(-k / 60.0) * math.sin(2 * math.pi * 1000 * k / RATE))
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

    def problem(self, status, detail):
        body = json.dumps({"type": "about:blank", "status": status, "detail": detail}).encode()
        self.reply(status, body, "application/problem+json")

    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, b"ok\n", "text/plain")
        else:
            self.problem(404, "no such path")

    def do_POST(self):
        if self.path != "/v1/generate":
            return self.problem(404, "no such path")
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
        body = tune(seed, seconds, bpm, channels)
        self.reply(200, body, "audio/wav", {"X-Model-Version": self.server.version})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--version", default=VERSION, help="what X-Model-Version says")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.version = args.version
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
