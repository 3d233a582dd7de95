"""Real HTTP receivers for the webhook tests, and an independent signature
check (Python's hmac, not our C code).

A Receiver is an http.server on 127.0.0.1 (the local stack allow-lists
loopback) that records every request it gets and answers what its
`respond` function says for it.
"""
import base64
import hashlib
import hmac
import http.server
import json
import threading
import time


def verify(secret, headers, body):
    """True when one of the webhook-signature entries is HMAC-SHA256 of
    "id.timestamp.body" under the secret (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.partition(",")[2] for s in headers["webhook-signature"].split()
             if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, g) for g in given)


class Request:
    def __init__(self, headers, body, at):
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.at = at  # time.time() when it arrived
        self.id = self.headers.get("webhook-id")
        self.json = json.loads(body) if body else None


def ok(n, request):
    return 200, {}, b"thanks", 0


class Receiver:
    """respond(n, request) -> (status, headers, body, delay_s), where n counts
    the requests with the same webhook-id (1 for the first attempt)."""

    def __init__(self, respond=ok):
        self.respond = respond
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = Request(dict(self.headers), body, time.time())
                with receiver.lock:
                    receiver.requests.append(req)
                    n = sum(1 for r in receiver.requests if r.id == req.id)
                status, headers, answer, delay = receiver.respond(n, req)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sender gave up (a timeout): what the test wants

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def got(self, predicate=lambda r: True):
        with self.lock:
            return [r for r in self.requests if predicate(r)]

    def wait(self, predicate=lambda r: True, count=1, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.got(predicate)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"receiver got {len(self.got(predicate))} of {count} matching "
                             f"requests in {timeout} s ({len(self.got())} in all)")

    def close(self):
        self.server.shutdown()
        self.server.server_close()
