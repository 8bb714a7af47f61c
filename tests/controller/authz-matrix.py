#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""authz-matrix.py — every route of the controller's table (route-policy's lines on stdin) as
every caller: no token, admin, operator, viewer and a member of tenant alpha, against objects
of tenant bravo. Prints one JSON line per check, {"ok": bool, "name": str, "why": str}, for
test-authz-cluster.sh to turn into TAP.

What each cell must answer (docs/security.md, "Roles"):
  no token          401 on every route but the open ones (openapi.json, health)
  cluster role      403 below the route's role; otherwise authorised (never 401/403)
  member            403 on routes closed to members; on the others, another tenant's object is
                    404 (as if it did not exist), a VM spec naming another tenant is 403, and
                    a list or stream never names tenant bravo's objects
Refused cells send the real request (a wrong answer would change something, and the caller
checks afterwards that nothing changed); authorised changes send a request that is invalid
after authorisation (a name outside the grammar, or an unknown member) and must answer 400,
so the matrix itself changes nothing.

Environment: URL (the controller's TCP API), TOKEN_ADMIN, TOKEN_OPERATOR, TOKEN_VIEWER,
TOKEN_MEMBER (tenant alpha), HOST, GPU, OP_BRAVO (an operation on bravo's VM), TOKEN_ID (a
token's id), POOL (a licence pool), CA (a CA file for https, optional).
"""
import http.client
import json
import os
import ssl
import sys
import urllib.parse

RANK = {"member": 0, "viewer": 1, "operator": 2, "admin": 3}
URL = urllib.parse.urlsplit(os.environ["URL"])
SECRET_MARK = "bravo"  # every object of the other tenant has it in its name

# Real bodies of the changes, as a caller who means it would send them.
REAL_BODY = {
    ("POST", "/api/v1/hosts"): {"name": "evil", "endpoint": "http://127.0.0.1:9"},
    ("POST", "/api/v1/hosts/{host}/drain"): {},
    ("POST", "/api/v1/hosts/{host}/pool"): {"pool": "evil"},
    ("POST", "/api/v1/hosts/{host}/gpus/{gpu:text}/mode"): {"mode": "passthrough"},
    ("POST", "/api/v1/hosts/{host}/gpus/{gpu:text}/mig"): {"profiles": ["1g.10gb"]},
    ("POST", "/api/v1/vms"): {"name": "evil-vm", "memory_mib": 128, "tenant": "bravo"},
    ("POST", "/api/v1/placements"): {"name": "evil-vm", "memory_mib": 128, "tenant": "bravo"},
    ("POST", "/api/v1/advise"): {"kind": "inference", "gpu_memory": "8GiB"},
    ("POST", "/api/v1/vms/{vm}/stop"): {},
    ("POST", "/api/v1/vms/{vm}/migrate"): {"mode": "offline"},
    ("POST", "/api/v1/images"): {"name": "evil", "path": "/etc/passwd"},
    ("POST", "/api/v1/tokens"): {"name": "evil", "role": "admin"},
    ("PUT", "/api/v1/tenants/{tenant}"): {"quota": {}},
    ("PUT", "/api/v1/licenses/{pool}"): {"edition": "vws", "seats": 1},
}


def fill(pattern, invalid):
    """The path with its parameters: bravo's objects, or names outside the grammar."""
    values = {
        "{host}": os.environ["HOST"],
        "{gpu:text}": urllib.parse.quote(os.environ["GPU"], safe=""),
        "{vm}": "bravo-vm",
        "{image}": "bravo-img",
        "{tenant}": "bravo",
        "{pool}": os.environ["POOL"],
        "{id}": os.environ["TOKEN_ID"] if pattern.startswith("/api/v1/tokens/")
        else os.environ["OP_BRAVO"],
    }
    bad = {"{gpu:text}": values["{gpu:text}"]}
    path = pattern
    for k, v in values.items():
        path = path.replace(k, bad.get(k, "Bad_Name!") if invalid else v)
    return path


def request(method, path, token, body):
    if URL.scheme == "https":
        ctx = ssl.create_default_context(cafile=os.environ.get("CA"))
        conn = http.client.HTTPSConnection(URL.hostname, URL.port, timeout=20, context=ctx)
    else:
        conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=20)
    headers = {}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if path.startswith("/api/v1/events"):
        path += "?after=0"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    if path.startswith("/api/v1/events") and resp.status == 200:
        # the stream: what it has sent after a moment is enough
        conn.sock.settimeout(1.0)
        chunks = []
        try:
            while True:
                c = resp.read1(65536)
                if not c:
                    break
                chunks.append(c)
        except (TimeoutError, OSError):
            pass
        text = b"".join(chunks).decode(errors="replace")
    else:
        text = resp.read().decode(errors="replace")
    conn.close()
    return resp.status, text


def report(ok, name, why=""):
    print(json.dumps({"ok": bool(ok), "name": name, "why": why}), flush=True)


def main():
    routes = [json.loads(line) for line in sys.stdin if line.strip()]
    callers = [("anonymous", None, None), ("admin", "admin", os.environ["TOKEN_ADMIN"]),
               ("operator", "operator", os.environ["TOKEN_OPERATOR"]),
               ("viewer", "viewer", os.environ["TOKEN_VIEWER"]),
               ("member", "member", os.environ["TOKEN_MEMBER"])]
    cells = 0
    for rt in routes:
        method, pattern = rt["method"], rt["pattern"]
        change = method != "GET"
        real = REAL_BODY.get((method, pattern))
        if rt["upload"]:
            real = b"not an image"
        has_params = "{" in pattern
        for who, role, token in callers:
            name = f"{who:9} {method} {pattern}"
            if role is None:
                allowed = rt["role"] == "none"
                want_deny = None if allowed else 401
            elif rt["role"] == "none":
                allowed, want_deny = True, None
            elif role == "member":
                allowed = rt["members"] != "no"
                want_deny = None if allowed else 403
            else:
                allowed = RANK[role] >= RANK[rt["role"]]
                want_deny = None if allowed else 403
            cross = role == "member" and rt["members"] == "own"
            if not allowed:
                status, text = request(method, fill(pattern, False), token, real)
                report(status == want_deny, name + f" -> {want_deny}",
                       f"answered {status}: {text[:300]}")
            elif cross and any(p in pattern for p in ("{vm}", "{id}", "{tenant}")):
                # another tenant's object, asked for for real: as if it did not exist
                status, text = request(method, fill(pattern, False), token, real)
                report(status == 404, name + " (tenant bravo's) -> 404",
                       f"answered {status}: {text[:300]}")
            elif cross and change:
                # a VM spec naming another tenant
                status, text = request(method, fill(pattern, False), token, real)
                report(status == 403 and "tenant 'alpha'" in text,
                       name + " (tenant bravo named) -> 403", f"answered {status}: {text[:300]}")
            elif change:
                # authorised: invalid after authorisation, so nothing changes
                body = real if has_params else {"matrix-junk": True}
                status, text = request(method, fill(pattern, has_params), token, body)
                report(status == 400, name + " authorised (400 on a bad request)",
                       f"answered {status}: {text[:300]}")
            else:
                status, text = request(method, fill(pattern, False), token, None)
                ok = status not in (401, 403) and status < 500
                why = f"answered {status}: {text[:300]}"
                if role == "member" and SECRET_MARK in text:
                    ok, why = False, f"names tenant bravo's objects: {text[:400]}"
                report(ok, name + " authorised" +
                       (" (nothing of bravo)" if role == "member" else ""), why)
            cells += 1
    report(cells == len(routes) * len(callers), f"{cells} cells for {len(routes)} routes",
           "the matrix missed cells")


if __name__ == "__main__":
    main()
