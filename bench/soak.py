#!/usr/bin/env python3
"""soak.py - load and soak test for `parley serve` (Python 3 standard library only).

Starts `parley serve` with a model (or uses --url), then drives N concurrent
clients for T minutes with a traffic mix:

  valid      streaming chat completion read to the end (most requests)
  cancel     streaming chat, connection closed after the first chunk
  nonstream  non-streaming chat completion
  oversize   a 9 MiB body (expects 413)
  malformed  broken JSON / wrong types (expects 400)
  audio      /v1/audio/speech then /v1/audio/transcriptions (when the server has them)

Every 10 s it samples the server's RSS and open file descriptors from /proc.
At the end it prints requests by kind and status, TTFT p50/p99, RSS and fd
at warm-up end and at the end, and PASS/FAIL against the reliability bar:
zero 5xx for valid requests, the server still alive, RSS growth under 1%
after warm-up (the median RSS of the last minute against that of the first
minute after warm-up, so that the buffers of the requests in flight at one
sample are not taken for growth), no fd growth beyond the clients' open
connections.

  bench/soak.py --bin build/parley -m qwen2.5-0.5b-q4_0.gguf -c 8 -t 10
  bench/soak.py --url http://127.0.0.1:8080 --pid 1234 -c 8 -t 10

Exit status: 0 pass, 1 fail, 2 usage or start-up error.
"""
import argparse
import http.client
import io
import json
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import math
import urllib.parse

MIX = [("valid", 60), ("cancel", 10), ("nonstream", 10), ("oversize", 5), ("malformed", 10), ("audio", 5)]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_sample(pid):
    """(rss_kib, fds) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds
    except (OSError, StopIteration):
        return None


def smaps_breakdown(pid):
    """RSS of pid by kind of mapping, in KiB, from /proc/PID/smaps: file
    (the model's mapping, libraries), heap (the main malloc arena), arenas
    (glibc's per-thread arenas: anonymous heaps that start on a 64 MiB
    boundary), stacks (thread stacks: 8 MiB anonymous mappings), anon (other anonymous memory:
    large allocations such as the KV cache and scratch). None when gone."""
    out = {"file": 0, "heap": 0, "arenas": 0, "stacks": 0, "anon": 0}
    try:
        with open(f"/proc/{pid}/smaps") as f:
            kind = None
            for line in f:
                if line[0] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
                    fields = line.split()
                    lo, hi = (int(x, 16) for x in fields[0].split("-"))
                    path = fields[5] if len(fields) > 5 else ""
                    if path == "[heap]":
                        kind = "heap"
                    elif path.startswith("["):
                        kind = "stacks" if path == "[stack]" else "file"
                    elif path:
                        kind = "file"
                    elif lo % (64 << 20) == 0 and hi - lo <= (64 << 20):
                        kind = "arenas"
                    elif (8 << 20) - (64 << 10) <= hi - lo <= 8 << 20:
                        kind = "stacks"  # pthread's default 8 MiB, less its guard page
                    else:
                        kind = "anon"
                elif line.startswith("Rss:") and kind:
                    out[kind] += int(line.split()[1])
        return out
    except OSError:
        return None


def wav_bytes(seconds=1.0, rate=16000):
    """A small valid 16-bit mono WAV: a tone with pauses (content doesn't matter)."""
    n = int(seconds * rate)
    pcm = bytearray()
    for i in range(n):
        v = int(8000 * math.sin(2 * math.pi * 220 * i / rate)) if (i // 4000) % 2 == 0 else 0
        pcm += struct.pack("<h", v)
    hdr = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(pcm))
    return hdr + bytes(pcm)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by = {}          # (kind, status) -> count
        self.ttft = []        # seconds, valid streams
        self.errors = []      # first few error texts

    def add(self, kind, status, ttft=None, err=None):
        with self.lock:
            self.by[(kind, status)] = self.by.get((kind, status), 0) + 1
            if ttft is not None:
                self.ttft.append(ttft)
            if err and len(self.errors) < 20:
                self.errors.append(f"{kind}: {err}")


class Client(threading.Thread):
    def __init__(self, idx, args, stats, stop, has_audio, mix):
        super().__init__(daemon=True)
        self.idx, self.args, self.stats, self.stop, self.has_audio, self.mix = idx, args, stats, stop, has_audio, mix
        self.rng = random.Random(1000 + idx)
        u = urllib.parse.urlparse(args.url)
        self.host, self.port = u.hostname, u.port or 80
        self.headers = {"Content-Type": "application/json"}
        if args.api_key:
            self.headers["Authorization"] = "Bearer " + args.api_key

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.args.request_timeout)

    def chat_body(self, stream):
        words = " ".join(self.rng.choice(["tell", "me", "about", "the", "sea", "and", "sky", "why", "how"])
                         for _ in range(self.rng.randint(3, 40)))
        return {"model": "soak", "messages": [{"role": "user", "content": words}],
                "max_tokens": self.args.max_tokens, "stream": stream, "temperature": 0.7,
                "seed": self.rng.randint(0, 1 << 30),
                **({"stream_options": {"include_usage": True}} if stream else {})}

    def run(self):
        kinds = [k for k, w in self.mix for _ in range(w) if k != "audio" or self.has_audio]
        while not self.stop.is_set():
            kind = self.rng.choice(kinds)
            try:
                getattr(self, "do_" + kind)()
            except Exception as e:  # a transport failure: the server dropped us
                self.stats.add(kind, "exception", err=repr(e))

    def do_valid(self, cancel=False):
        c = self.conn()
        t0 = time.monotonic()
        c.request("POST", "/v1/chat/completions", json.dumps(self.chat_body(True)), self.headers)
        r = c.getresponse()
        if r.status != 200:
            self.stats.add("cancel" if cancel else "valid", r.status, err=r.read(300).decode("utf-8", "replace"))
            c.close()
            return
        ttft, done = None, False
        while True:
            line = r.fp.readline()
            if not line:
                break
            # the first chunk with generated text or reasoning (the role delta comes first
            # and carries none)
            if line.startswith(b"data: ") and ttft is None and (
                    (b'"content":"' in line and b'"content":""' not in line) or b'"reasoning_content":"' in line
                    or b'"finish_reason":"' in line):
                ttft = time.monotonic() - t0
                if cancel:
                    break
            if line.strip() == b"data: [DONE]":
                done = True
                break
        c.close()
        kind = "cancel" if cancel else "valid"
        if cancel or done:
            self.stats.add(kind, 200, ttft=None if cancel else ttft)
        else:
            self.stats.add(kind, "truncated", err="stream ended without [DONE]")

    def do_cancel(self):
        self.do_valid(cancel=True)

    def do_nonstream(self):
        c = self.conn()
        c.request("POST", "/v1/chat/completions", json.dumps(self.chat_body(False)), self.headers)
        r = c.getresponse()
        body = r.read()
        c.close()
        err = None
        if r.status == 200:
            j = json.loads(body)
            if "choices" not in j or "usage" not in j:
                err = "no choices/usage"
        self.stats.add("nonstream", r.status if not err else "badshape", err=err or (None if r.status == 200 else body[:300]))

    def do_oversize(self):
        c = self.conn()
        big = b'{"messages":[{"role":"user","content":"' + b"a" * (9 << 20) + b'"}]}'
        try:
            c.request("POST", "/v1/chat/completions", big, self.headers)
            r = c.getresponse()
            r.read()
            self.stats.add("oversize", r.status)
        except (BrokenPipeError, ConnectionResetError):
            self.stats.add("oversize", "reset")  # the server may close before reading it all
        c.close()

    def do_malformed(self):
        bodies = [b"{", b'{"messages": 5}', b'{"messages": [{"role": "user", "content": 3}]}', b"\xff\xfe",
                  b'{"messages": [], "max_tokens": -1}', b"[" * 10000]
        c = self.conn()
        c.request("POST", "/v1/chat/completions", self.rng.choice(bodies), self.headers)
        r = c.getresponse()
        r.read()
        c.close()
        self.stats.add("malformed", r.status)

    def do_audio(self):
        c = self.conn()
        c.request("POST", "/v1/audio/speech", json.dumps({"model": "tts", "input": "Hello there. How are you?",
                                                          "response_format": "wav"}), self.headers)
        r = c.getresponse()
        r.read()
        self.stats.add("audio", r.status)
        boundary = "soakboundary%d" % self.rng.randint(0, 1 << 30)
        body = io.BytesIO()
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nstt\r\n".encode())
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
                   "Content-Type: audio/wav\r\n\r\n".encode())
        body.write(wav_bytes())
        body.write(f"\r\n--{boundary}--\r\n".encode())
        h = dict(self.headers)
        h["Content-Type"] = "multipart/form-data; boundary=" + boundary
        c.request("POST", "/v1/audio/transcriptions", body.getvalue(), h)
        r = c.getresponse()
        r.read()
        c.close()
        self.stats.add("audio", r.status)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--bin", help="parley binary: start `parley serve` (needs -m)")
    ap.add_argument("-m", "--model", help="model for the started server")
    ap.add_argument("--url", help="use a running server instead")
    ap.add_argument("--pid", type=int, help="the running server's pid (for RSS/fd samples with --url)")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("-c", "--clients", type=int, default=8)
    ap.add_argument("-t", "--minutes", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the RSS/fd baseline")
    ap.add_argument("--window", type=float, default=60.0,
                    help="seconds of samples whose median is the RSS at the start (after warm-up) and at the end")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--request-timeout", type=float, default=120.0)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="the started server's -t (0: its default)")
    ap.add_argument("--mix", default=None,
                    help="traffic weights, e.g. valid=60,audio=0 (default: " +
                    ",".join(f"{k}={w}" for k, w in MIX) + "; kinds not named keep theirs)")
    ap.add_argument("--server-log", default=None, help="the started server's stderr to this file")
    ap.add_argument("--smaps", action="store_true",
                    help="also print each sample's RSS by kind of mapping (file, heap, arenas, stacks, anon)")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = ap.parse_args()

    mix = dict(MIX)
    for item in (a.mix.split(",") if a.mix else []):
        k, _, w = item.partition("=")
        if k not in mix or not w.isdigit():
            ap.error(f"bad --mix item '{item}' (kinds: {', '.join(mix)})")
        mix[k] = int(w)
    mix = [(k, w) for k, w in mix.items() if w > 0]
    if not mix:
        ap.error("--mix leaves no traffic")

    server = None
    if a.url is None:
        if not a.bin or not a.model:
            ap.error("give --bin and -m to start a server, or --url")
        port = free_port()
        a.url = f"http://127.0.0.1:{port}"
        log = open(a.server_log, "wb") if a.server_log else subprocess.PIPE
        server = subprocess.Popen([a.bin, "serve", "-m", a.model, "--port", str(port), "-np", str(a.slots),
                                   "--max-queue", "64", *(["-t", str(a.threads)] if a.threads else [])],
                                  stdout=subprocess.DEVNULL, stderr=log)
        a.pid = server.pid
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None:
                err = server.stderr.read().decode()[-2000:] if server.stderr else f"(see {a.server_log})"
                print("soak: the server exited at start-up:", err, file=sys.stderr)
                return 2
            time.sleep(0.2)
        else:
            print("soak: the server did not become healthy in 120 s", file=sys.stderr)
            server.kill()
            return 2

    u = urllib.parse.urlparse(a.url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
    c.request("OPTIONS", "/v1/audio/speech")
    has_audio = c.getresponse().status != 404
    c.close()

    stats, stop = Stats(), threading.Event()
    clients = [Client(i, a, stats, stop, has_audio, mix) for i in range(a.clients)]
    t0 = time.monotonic()
    for cl in clients:
        cl.start()
    samples = []  # (t, rss_kib, fds)
    end = t0 + a.minutes * 60
    alive = True
    while time.monotonic() < end:
        time.sleep(min(10, max(0, end - time.monotonic())))
        if a.pid:
            s = proc_sample(a.pid)
            if s is None:
                alive = False
                break
            samples.append((time.monotonic() - t0, *s))
            print(f"soak: t={samples[-1][0]:5.0f}s rss={s[0] / 1024:.1f} MiB fds={s[1]} "
                  f"requests={sum(stats.by.values())}", file=sys.stderr, flush=True)
            b = smaps_breakdown(a.pid) if a.smaps else None
            if b:
                print("soak:   " + " ".join(f"{k}={v / 1024:.1f}" for k, v in b.items()) + " MiB",
                      file=sys.stderr, flush=True)
    stop.set()
    for cl in clients:
        cl.join(timeout=a.request_timeout)

    base = next((s for s in samples if s[0] >= a.warmup), samples[0] if samples else None)
    last = samples[-1] if samples else None
    valid_5xx = sum(n for (k, st), n in stats.by.items()
                    if k in ("valid", "nonstream", "cancel") and isinstance(st, int) and st >= 500)
    # bad input must be refused with a 4xx (an oversize body may also be cut off by a reset)
    wrong_4xx = sum(n for (k, st), n in stats.by.items()
                    if k in ("malformed", "oversize") and not (isinstance(st, int) and 400 <= st < 500)
                    and st != "reset")
    transport = sum(n for (k, st), n in stats.by.items() if st in ("exception", "truncated", "badshape"))
    # RSS at the start and at the end: the median of the samples in the first and
    # the last --window seconds after warm-up. One sample holds whatever the
    # requests in flight at that instant had allocated (a sampler alone is
    # n_vocab x 20 bytes: 2.9 MiB per request at a 152k vocabulary, up to one
    # per client), which is not growth; the same statistic at both ends is.
    after = [s for s in samples if base and s[0] >= base[0]]
    rss_start = statistics.median(s[1] for s in after if s[0] <= after[0][0] + a.window) if after else None
    rss_end = statistics.median(s[1] for s in after if s[0] >= after[-1][0] - a.window) if after else None
    rss_growth = (rss_end - rss_start) / rss_start * 100 if after else float("nan")
    fd_growth = last[2] - base[2] if base and last else 0
    if server:
        server.send_signal(signal.SIGTERM)
        try:
            rc = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            rc = "hung on SIGTERM"
    else:
        rc = None
    # the fd count includes the clients' open connections (up to one per client at a
    # sample), so growth beyond that is what would be a leak
    ok = alive and valid_5xx == 0 and wrong_4xx == 0 and transport == 0 and (rss_growth < 1.0 or not base) \
        and fd_growth <= a.clients \
        and rc in (None, 0)
    summary = {
        "clients": a.clients, "minutes": a.minutes,
        "requests": {f"{k} {st}": n for (k, st), n in sorted(stats.by.items(), key=str)},
        "ttft_p50_ms": pct(stats.ttft, 50) * 1000, "ttft_p99_ms": pct(stats.ttft, 99) * 1000,
        "rss_warm_mib": rss_start / 1024 if after else None, "rss_end_mib": rss_end / 1024 if after else None,
        "rss_samples_mib": [round(s[1] / 1024, 1) for s in samples], "window_s": a.window,
        "rss_growth_pct": rss_growth, "fds_warm": base[2] if base else None, "fds_end": last[2] if last else None,
        "valid_5xx": valid_5xx, "bad_input_not_4xx": wrong_4xx, "transport_errors": transport, "server_alive": alive,
        "sigterm_exit": rc, "errors": stats.errors[:5], "pass": ok,
    }
    if a.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"soak: {a.clients} clients, {a.minutes:g} min against {a.url}")
        print("| kind status | requests |\n|---|--:|")
        for k, n in summary["requests"].items():
            print(f"| {k} | {n} |")
        print(f"TTFT p50 {summary['ttft_p50_ms']:.0f} ms, p99 {summary['ttft_p99_ms']:.0f} ms")
        if base:
            print(f"RSS {summary['rss_warm_mib']:.1f} MiB after warm-up -> {summary['rss_end_mib']:.1f} MiB "
                  f"({rss_growth:+.2f}%; medians of the first and last {a.window:g} s after {a.warmup:g} s; "
                  f"single samples {base[1] / 1024:.1f} -> {last[1] / 1024:.1f} MiB, "
                  f"max {max(s[1] for s in after) / 1024:.1f}), fds {base[2]} -> {last[2]}")
        print(f"valid 5xx: {valid_5xx}, bad input not 4xx: {wrong_4xx}, transport errors: {transport}, server alive: {alive}, "
              f"SIGTERM exit: {rc}")
        for e in stats.errors[:5]:
            print("  error:", e)
        print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
