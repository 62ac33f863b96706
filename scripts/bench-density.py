#!/usr/bin/env python3
"""Density and API throughput of a running berthd, through its Docker API on the unix socket.

    scripts/bench-density.py SOCKET BERTHD_PID IMAGE [N] [--churn M]

1. density: creates N containers of IMAGE running `sleep=3600` (the hello example's command:
   the guest blocks in a host sleep), starts them all, and reports the wall time of the start
   phase and the daemon's RSS growth per running container (from /proc/PID/status); then
   kills and removes them.
2. --churn M: creates, starts, waits for and removes M short-lived containers of IMAGE (no
   arguments: it prints and exits), one keep-alive connection per worker, 2 workers, and
   reports containers per second.

Only the standard library: http.client over an AF_UNIX socket with keep-alive.
"""

import http.client
import json
import socket
import sys
import threading
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=600)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        self.sock = s


def call(conn, method, url, body=None, ok=(200, 201, 204, 304)):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, url, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status not in ok:
        raise SystemExit(f"{method} {url}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def density(sock, pid, image, n):
    conn = UnixConnection(sock)
    ids = []
    t0 = time.monotonic()
    for _ in range(n):
        ids.append(call(conn, "POST", "/containers/create", {"Image": image, "Cmd": ["sleep=3600"]})["Id"])
    created = time.monotonic() - t0
    before = rss_kib(pid)
    t0 = time.monotonic()
    for i in ids:
        call(conn, "POST", f"/containers/{i}/start")
    started = time.monotonic() - t0
    time.sleep(2)  # let every guest reach its sleep
    after = rss_kib(pid)
    running = len(call(conn, "GET", "/containers/json"))
    print(f"density: {n} containers: create {created:.2f} s, start {started:.2f} s "
          f"({n / started:.0f}/s), running {running}, daemon RSS {before / 1024:.0f} MiB -> "
          f"{after / 1024:.0f} MiB, {(after - before) / n:.1f} KiB per running container")
    t0 = time.monotonic()
    for i in ids:
        call(conn, "DELETE", f"/containers/{i}?force=1")
    print(f"density: removed {n} in {time.monotonic() - t0:.2f} s")


def churn(sock, image, m, workers=2):
    done = [0]
    lock = threading.Lock()

    def worker(count):
        conn = UnixConnection(sock)
        for _ in range(count):
            cid = call(conn, "POST", "/containers/create", {"Image": image})["Id"]
            # Register the waiter first on a second connection, as the docker CLI does: the
            # daemon sends the headers once the waiter is registered, so start only then.
            wconn = UnixConnection(sock)
            wconn.request("POST", f"/containers/{cid}/wait?condition=next-exit")
            r = wconn.getresponse()
            call(conn, "POST", f"/containers/{cid}/start")
            r.read()
            wconn.close()
            call(conn, "DELETE", f"/containers/{cid}")
            with lock:
                done[0] += 1

    per = m // workers
    threads = [threading.Thread(target=worker, args=(per,)) for _ in range(workers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    print(f"churn: {done[0]} containers created, run to exit and removed in {elapsed:.2f} s: "
          f"{done[0] / elapsed:.0f}/s ({workers} clients)")


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        raise SystemExit(__doc__)
    sock, pid, image = args[0], int(args[1]), args[2]
    rest = args[3:]
    if rest and rest[0] == "--churn":
        churn(sock, image, int(rest[1]))
        return
    density(sock, pid, image, int(rest[0]) if rest else 1000)


if __name__ == "__main__":
    main()
