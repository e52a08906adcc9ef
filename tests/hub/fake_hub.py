#!/usr/bin/env python3
"""fake_hub.py - a small stand-in for the Hugging Face hub, for tests (127.0.0.1 only).

    python3 tests/hub/fake_hub.py serve --model-dir third_party/models/stories260k \
        --port-file PORTFILE --log LOGFILE [--faults FILE] [--token TOKEN] [--idle 60] [--max-life 300]
    python3 tests/hub/fake_hub.py ctl PORT '{"faults": [...]}'     add faults
    python3 tests/hub/fake_hub.py ctl PORT reset                    clear faults

serve binds a free port on 127.0.0.1, writes it to PORTFILE, and exits by
itself after --idle seconds without a request (or --max-life in all), so a
test that dies never leaves it running for long.

It speaks the part of the hub protocol that dam uses:
  HEAD/GET /ORG/NAME/resolve/REV/PATH   small files: 200 with ETag (git blob sha1),
                                        X-Repo-Commit, Content-Length; Range served.
                                        LFS files (*.safetensors): 302 to
                                        http://localhost:PORT/cdn/SHA256/NAME (another host
                                        name for the same server) with X-Linked-Etag (the
                                        sha256) and X-Linked-Size.
  HEAD/GET /cdn/SHA256/NAME             the LFS bytes; Range served.
  GET /api/models/ORG/NAME/revision/REV the file list ({"sha", "siblings": [{"rfilename"}]}).
Errors carry X-Error-Code: RepoNotFound (401), RevisionNotFound (404), EntryNotFound
(404, with X-Repo-Commit), GatedRepo (401 unless "Authorization: Bearer TOKEN").

Repos (built from --model-dir):
  dam-test/stories260k   the model; model.safetensors is LFS; no tokenizer_config.json;
                         also README.md and docs/notes.md (for --include)
  dam-test/sharded       weights in two LFS shards + model.safetensors.index.json
  dam-test/gated         like stories260k, gated
  dam-test/evil          an index whose shard name climbs out ("../../...")
  dam-test/evil-list     like stories260k, with "../escape.md" in its file list
  old-name/stories260k   renamed: every resolve answers 307 to dam-test/stories260k
Revisions: main, v1.0 and the commit (sha1 of the repo id).

Faults (in the --faults file, {"seq": N, "faults": [...]}, reread whenever it changes; or
POST /_control {"faults": [...]}); each one {"path": SUBSTRING, "method":
"GET"|"HEAD" (optional), "times": N (default 1, -1 = always), "kind": ...}:
  status        answer "code" (and "retry_after" seconds as Retry-After) instead
  drop          send the headers and "bytes" bytes of the body, then cut the connection
  stall         send "bytes" bytes, then wait "seconds" before cutting the connection
  corrupt       flip one byte in the middle of the body (the size stays right)
  ignore_range  answer a Range request with 200 and the whole file

Every request is logged as one line to --log:
  METHOD PATH host=HOST auth=yes|no range=RANGE|- status=CODE t=UNIXTIME
"""
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, repo_id, files, lfs=(), gated=False, listing_extra=()):
        self.id = repo_id
        self.files = files                      # path -> bytes
        self.lfs = set(lfs)                     # paths served through the CDN
        self.gated = gated
        self.listing_extra = list(listing_extra)
        self.commit = hashlib.sha1(repo_id.encode()).hexdigest()

    def etag(self, path):
        data = self.files[path]
        return hashlib.sha256(data).hexdigest() if path in self.lfs else git_blob_sha1(data)


def build_repos(model_dir):
    def read(name):
        with open(os.path.join(model_dir, name), "rb") as f:
            return f.read()

    base = {n: read(n) for n in ("config.json", "generation_config.json", "tokenizer.json",
                                 "special_tokens_map.json", "model.safetensors")}
    base["README.md"] = b"# stories260k\nA tiny story model, served by a fake hub for tests.\n"
    base["docs/notes.md"] = b"notes in a sub-folder\n"
    weights = base["model.safetensors"]
    half = len(weights) // 2
    shards = {"model-00001-of-00002.safetensors": weights[:half],
              "model-00002-of-00002.safetensors": weights[half:]}
    index = {"metadata": {"total_size": len(weights)},
             "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                            "b.weight": "model-00002-of-00002.safetensors",
                            "c.weight": "model-00001-of-00002.safetensors"}}
    sharded = {"config.json": base["config.json"], "tokenizer.json": base["tokenizer.json"],
               "model.safetensors.index.json": json.dumps(index, indent=2).encode(), **shards}
    evil_index = {"weight_map": {"a.weight": "../../../../evil.safetensors"}}
    evil = {"config.json": base["config.json"],
            "model.safetensors.index.json": json.dumps(evil_index).encode()}
    repos = [
        Repo("dam-test/stories260k", dict(base), lfs=["model.safetensors"]),
        Repo("dam-test/sharded", sharded, lfs=list(shards)),
        Repo("dam-test/gated", dict(base), lfs=["model.safetensors"], gated=True),
        Repo("dam-test/evil", evil),
        Repo("dam-test/evil-list", dict(base), lfs=["model.safetensors"], listing_extra=["../escape.md"]),
    ]
    return {r.id: r for r in repos}


RENAMED = {"old-name/stories260k": "dam-test/stories260k"}


class State:
    def __init__(self, args):
        self.repos = build_repos(args.model_dir)
        self.by_sha = {}                        # sha256 -> (repo, path) for the CDN
        for r in self.repos.values():
            for p in r.lfs:
                self.by_sha[r.etag(p)] = (r, p)
        self.token = args.token
        self.faults = []
        self.faults_path = args.faults
        self.faults_text = ""
        self.lock = threading.Lock()
        self.log_path = args.log
        self.last_request = time.time()
        self.port = 0

    def reload_faults(self):
        """The --faults file replaces the faults whenever its content changes
        (tests write {"seq": N, "faults": [...]}: a new seq re-arms them)."""
        if not self.faults_path:
            return
        try:
            with open(self.faults_path) as f:
                text = f.read()
        except OSError:
            return
        if text != self.faults_text:
            self.faults_text = text
            self.faults = json.loads(text or "{}").get("faults", [])

    def take_fault(self, method, path):
        with self.lock:
            self.reload_faults()
            for f in self.faults:
                if f.get("times", 1) == 0 or f["path"] not in path:
                    continue
                if f.get("method") and f["method"] != method:
                    continue
                if f.get("times", 1) > 0:
                    f["times"] = f.get("times", 1) - 1
                return f
        return None

    def log(self, line):
        with self.lock:
            with open(self.log_path, "a") as f:
                f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True              # headers and body in separate writes: no 40 ms stalls
    server_version = "fake-hub/1"
    state = None                                # set by serve()

    def log_message(self, fmt, *args):          # quiet: our own log is enough
        pass

    # ---- responses ----

    def start(self, code, headers=(), length=0):
        st = self.state
        st.log("%s %s host=%s auth=%s range=%s status=%d t=%.3f" % (
            self.command, self.path, self.headers.get("Host", "-"),
            "yes" if self.headers.get("Authorization") else "no",
            self.headers.get("Range", "-").replace(" ", ""), code, time.time()))
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def error(self, code, error_code=None, commit=None, message=None, extra=()):
        body = (message or "error").encode()
        headers = list(extra)
        if error_code:
            headers.append(("X-Error-Code", error_code))
        if message:
            headers.append(("X-Error-Message", message))
        if commit:
            headers.append(("X-Repo-Commit", commit))
        self.start(code, headers, len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def serve_bytes(self, data, headers, fault):
        """200 or 206 (Range) with data; applies body faults."""
        total = len(data)
        start, code = 0, 200
        rng = self.headers.get("Range")
        if rng and not (fault and fault["kind"] == "ignore_range"):
            spec = rng.strip().split("=", 1)[1] if "=" in rng else ""
            first = spec.split("-", 1)[0]
            start = int(first) if first.isdigit() else 0
            if start >= total and total > 0:
                self.start(416, [("Content-Range", "bytes */%d" % total)])
                return
            code = 206
            headers = headers + [("Content-Range", "bytes %d-%d/%d" % (start, total - 1, total))]
        body = data[start:]
        if fault and fault["kind"] == "corrupt" and body:
            mid = len(body) // 2
            body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1:]
        self.start(code, headers + [("Accept-Ranges", "bytes")], len(body))
        if self.command == "HEAD":
            return
        if fault and fault["kind"] in ("drop", "stall"):
            cut = fault.get("bytes", 0)
            self.wfile.write(body[:cut])
            self.wfile.flush()
            if fault["kind"] == "stall":
                time.sleep(fault.get("seconds", 5))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    # ---- routes ----

    def handle_any(self):
        st = self.state
        st.last_request = time.time()
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_control"):
            return self.control(path)
        fault = st.take_fault(self.command, self.path)
        if fault and fault["kind"] == "status":
            extra = []
            if "retry_after" in fault:
                extra.append(("Retry-After", str(fault["retry_after"])))
            return self.error(fault["code"], fault.get("error_code"), extra=extra)
        parts = [urllib.parse.unquote(p) for p in path.split("/")[1:]]
        if len(parts) >= 3 and parts[0] == "cdn":
            return self.cdn(parts[1], fault)
        if len(parts) >= 6 and parts[0] == "api" and parts[1] == "models" and parts[4] == "revision":
            return self.listing("%s/%s" % (parts[2], parts[3]), "/".join(parts[5:]))
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve("%s/%s" % (parts[0], parts[1]), parts[3], "/".join(parts[4:]), fault)
        self.error(404, message="no such route")

    def find_repo(self, repo_id, revision):
        """The repo, or None after answering the error."""
        st = self.state
        repo = st.repos.get(repo_id)
        if repo is None:
            self.error(401, "RepoNotFound", message="Repository not found")
            return None
        if repo.gated and self.headers.get("Authorization") != "Bearer %s" % st.token:
            self.error(401, "GatedRepo", message="Access to model %s is restricted." % repo_id)
            return None
        if revision not in ("main", "v1.0", repo.commit):
            self.error(404, "RevisionNotFound", message="Invalid rev id: %s" % revision)
            return None
        return repo

    def resolve(self, repo_id, revision, path, fault):
        if repo_id in RENAMED:                  # a relative redirect, as the hub does for renames
            target = "/%s/resolve/%s/%s" % (RENAMED[repo_id], urllib.parse.quote(revision, safe=""),
                                            urllib.parse.quote(path))
            return self.start(307, [("Location", target)])
        repo = self.find_repo(repo_id, revision)
        if repo is None:
            return
        if path not in repo.files:
            return self.error(404, "EntryNotFound", repo.commit, "Entry not found")
        common = [("X-Repo-Commit", repo.commit)]
        if path in repo.lfs:
            sha = repo.etag(path)
            location = "http://localhost:%d/cdn/%s/%s" % (self.state.port, sha, urllib.parse.quote(path))
            pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
                sha.encode(), len(repo.files[path]))
            return self.start(302, common + [
                ("Location", location), ("ETag", '"%s"' % git_blob_sha1(pointer)),
                ("X-Linked-Etag", '"%s"' % sha), ("X-Linked-Size", str(len(repo.files[path])))])
        etag = '"%s"' % repo.etag(path)
        if path == "generation_config.json":    # a weak etag, as the hub sends at times
            etag = "W/" + etag
        self.serve_bytes(repo.files[path], common + [("ETag", etag)], fault)

    def cdn(self, sha, fault):
        entry = self.state.by_sha.get(sha)
        if entry is None:
            return self.error(404, message="no such object")
        repo, path = entry
        self.serve_bytes(repo.files[path], [("ETag", '"%s"' % sha)], fault)

    def listing(self, repo_id, revision):
        repo = self.find_repo(repo_id, revision)
        if repo is None:
            return
        names = sorted(repo.files) + repo.listing_extra
        body = json.dumps({"id": repo.id, "sha": repo.commit,
                           "siblings": [{"rfilename": n} for n in names]}).encode()
        self.start(200, [("Content-Type", "application/json")], len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def control(self, path):
        st = self.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with st.lock:
            if path == "/_control/reset":
                st.faults = []
            else:
                st.faults.extend(json.loads(body or b"{}").get("faults", []))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_HEAD = do_POST = handle_any


def serve(args):
    state = State(args)
    Handler.state = state
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    started = time.time()

    def watchdog():
        while True:
            time.sleep(0.2)
            now = time.time()
            if now - state.last_request > args.idle or now - started > args.max_life:
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % state.port)
    os.rename(tmp, args.port_file)
    server.serve_forever()


def ctl(port, what):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    if what == "reset":
        req = urllib.request.Request("http://127.0.0.1:%d/_control/reset" % port, data=b"", method="POST")
    else:
        json.loads(what)                        # fail early on a typo
        req = urllib.request.Request("http://127.0.0.1:%d/_control" % port, data=what.encode(), method="POST")
    opener.open(req, timeout=10).read()


def main():
    import argparse
    ap = argparse.ArgumentParser(description="fake Hugging Face hub for tests")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--model-dir", required=True)
    s.add_argument("--port-file", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--token", default="hf_fake_test_token")
    s.add_argument("--faults", help="JSON file of faults, reread when it changes")
    s.add_argument("--idle", type=float, default=60)
    s.add_argument("--max-life", type=float, default=300)
    c = sub.add_parser("ctl")
    c.add_argument("port", type=int)
    c.add_argument("what")
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args)
    else:
        ctl(args.port, args.what)


if __name__ == "__main__":
    sys.exit(main())
