#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""invariants.py — checks reliability.md's invariants I1–I4 on a running simulated cluster
(docs/reliability.md, "Crash consistency").

  invariants.py --cluster DIR [--history FILE] [--pids-before FILE] [--save-pids FILE]
                [--no-reconcile] [--quiet]

  --cluster DIR       a contrib/sim-cluster.sh directory: the controller's UNIX socket
                      (DIR/gpuvirt.sock), each agent's (DIR/hostK-state/agent.sock) and each
                      simulated host's root (DIR/hostK); the hosts are read from DIR/cluster.env
  --controller-sock S, --agent NAME=SOCK:ROOT (repeatable)
                      the same, named one by one (instead of --cluster or beside it)
  --history FILE      JSON lines, one per API call made by the client under test:
                      {"t": seconds, "op": "create|start|stop|delete|migrate", "vm": NAME,
                       "status": HTTP status, "state": the operation's final state or null,
                       "to": target host (migrate)}. "acknowledged" = status 2xx and state
                      "succeeded".
  --pids-before FILE  {"vm": {"host": H, "pid": P}} written by --save-pids before a kill: I4
  --save-pids FILE    write the running VMs' QEMU pids (after the checks)
  --no-reconcile      do not ask each agent for a reconcile pass before I3 (by default one
                      pass is run: POST /v1/reconcile, "gone after one reconcile pass")
  --settle S          read and check again, every 0.5 s, until nothing is violated or S seconds
                      passed (default 15): operations still finishing and orphans waiting for
                      their reconcile pass are not violations; what is still wrong is
  --gpuvirt, --gpuvirt-sim  binaries (default $GPUVIRT, $GPUVIRT_SIM)

Checks (each violation is printed with its evidence on one line "VIOLATION In: ..."):
  I1  no GPU object owned twice: the controller's placements (a whole GPU, or overlapping MIG
      slices of one GPU, in two VMs) and the agents' hardware records (one mdev/VF/GI/whole GPU
      in two VMs' records);
  I2  every acknowledged mutation holds: the last call on a VM, when acknowledged, is what the
      controller shows (create/start → exists and running, stop → stopped, migrate → on its
      target, delete → gone); an acknowledged create with no later delete attempted → exists;
      an acknowledged delete with no later create attempted → gone;
  I3  after one reconcile pass, every GPU hardware object of a simulated host (vfio-pci binding,
      vGPU, MIG GPU instance) is in a VM record of that host's agent or the host's configuration
      (what the agent's reconcile report does not call an orphan), and every VM of an agent
      is a controller VM on that host (or the target of its move); every controller VM that
      is running is run by its host's agent;
  I4  a VM that was running before (--pids-before) and still is runs the same QEMU (pid).
Exit status: 0 none violated, 1 violations, 2 the cluster could not be read.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time


class UnixHTTP:
    def __init__(self, path):
        self.path = path

    def call(self, method, url, body=None, timeout=30):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.path)
        data = json.dumps(body).encode() if body is not None else b""
        req = (f"{method} {url} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
               f"Content-Length: {len(data)}\r\n")
        if body is not None:
            req += "Content-Type: application/json\r\n"
        if method != "GET":
            # every change names its operation (docs/agent.md): without one the agent answers
            # 400 and does nothing, so a reconcile pass would silently not run
            req += f"Operation-Id: inv-{os.getpid()}-{time.monotonic_ns()}\r\n"
        s.sendall(req.encode() + b"\r\n" + data)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
        s.close()
        raw = b"".join(chunks)
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            out, buf = b"", rest
            while buf:
                n, _, buf = buf.partition(b"\r\n")
                size = int(n.split(b";")[0] or b"0", 16)
                if size == 0:
                    break
                out += buf[:size]
                buf = buf[size + 2:]
            rest = out
        try:
            doc = json.loads(rest) if rest.strip() else None
        except ValueError:
            doc = None
        return status, doc


def retry(fn, tries=50, pause=0.2):
    last = None
    for _ in range(tries):
        try:
            return fn()
        except OSError as e:
            last = e
            time.sleep(pause)
    raise last


def read_env(d):
    env = {}
    try:
        for line in open(os.path.join(d, "cluster.env")):
            line = line.strip()
            if "=" in line and not line.startswith("#"):
                k, _, v = line.removeprefix("export ").partition("=")
                env[k] = v.strip("'\"").replace("\\ ", " ")
    except OSError:
        pass
    return env


def main():
    ap = argparse.ArgumentParser(description="check invariants I1-I4 on a simulated cluster")
    ap.add_argument("--cluster")
    ap.add_argument("--controller-sock")
    ap.add_argument("--agent", action="append", default=[])
    ap.add_argument("--history")
    ap.add_argument("--pids-before")
    ap.add_argument("--save-pids")
    ap.add_argument("--no-reconcile", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--settle", type=float, default=15.0)
    ap.add_argument("--gpuvirt", default=os.environ.get("GPUVIRT", "gpuvirt"))
    ap.add_argument("--gpuvirt-sim", default=os.environ.get("GPUVIRT_SIM", "gpuvirt-sim"))
    a = ap.parse_args()

    agents = {}  # name -> (sock, root)
    csock = a.controller_sock
    if a.cluster:
        csock = csock or os.path.join(a.cluster, "gpuvirt.sock")
        env = read_env(a.cluster)
        hosts = env.get("GPUVIRT_CLUSTER_HOSTS", "").replace(",", " ").split()
        if not hosts:
            k = 1
            while os.path.isdir(os.path.join(a.cluster, f"host{k}")):
                hosts.append("node-" + "abcdefgh"[k - 1])
                k += 1
        for k, h in enumerate(hosts, 1):
            agents[h] = (os.path.join(a.cluster, f"host{k}-state", "agent.sock"),
                         os.path.join(a.cluster, f"host{k}"))
    for spec in a.agent:
        n, _, rest = spec.partition("=")
        s, _, r = rest.partition(":")
        agents[n] = (s, r)
    if not csock or not agents:
        ap.error("name the cluster (--cluster DIR) or the controller and the agents")

    stats = [0, 0, 0]

    def evaluate():
        bad = []

        def violation(inv, msg):
            bad.append(f"VIOLATION {inv}: {msg}")

        ctl = UnixHTTP(csock)
        try:
            st, cvms = retry(lambda: ctl.call("GET", "/api/v1/vms"))
            if st != 200:
                raise OSError(f"GET /api/v1/vms answered {st}")
        except OSError as e:
            print(f"invariants: cannot read the controller at '{csock}': {e}", file=sys.stderr)
            return None, 2
        cvm = {v["name"]: v for v in cvms}

        # ---- agents (after one reconcile pass) and hardware
        avms, hw, orphans = {}, {}, {}
        for h, (sock, root) in agents.items():
            ag = UnixHTTP(sock)
            try:
                report = None
                if not a.no_reconcile:
                    st, report = retry(lambda: ag.call("POST", "/v1/reconcile", {}))
                    if st != 200 or not isinstance(report, dict) or "orphans" not in report:
                        raise OSError(f"POST /v1/reconcile answered {st}: {report}")
                st, lst = retry(lambda: ag.call("GET", "/v1/vms"))
            except OSError as e:
                print(f"invariants: cannot read {h}'s agent at '{sock}': {e}", file=sys.stderr)
                return None, 2
            avms[h] = {v["name"]: v for v in lst}
            orphans[h] = set()
            for o in (report or {}).get("orphans") or []:
                k = o.get("kind")
                orphans[h].add(("vgpu", o.get("id")) if k == "vgpu" else
                               ("gi", f"{o.get('gpu')}/{o.get('id')}") if k == "mig-gi" else
                               ("pt", o.get("gpu")) if k == "vfio-binding" else (k, o.get("id")))
            p = subprocess.run([a.gpuvirt_sim, "exec", "--root", root, "--", a.gpuvirt, "--json",
                                "host", "inspect"], capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                print(f"invariants: cannot inspect {h} ('{root}'): {p.stderr.strip()}",
                      file=sys.stderr)
                return None, 2
            objs = set()
            for g in json.loads(p.stdout).get("gpus", []):
                pci = g.get("pci_address")
                if g.get("driver") == "vfio-pci":
                    objs.add(("pt", pci))
                vg = g.get("vgpu") or {}
                for i in vg.get("instances") or []:
                    objs.add(("vgpu", i.get("uuid") if vg.get("interface") == "mdev"
                              else i.get("parent")))
                for gi in (g.get("mig") or {}).get("gpu_instances") or []:
                    objs.add(("gi", f"{pci}/{gi.get('id')}"))
            hw[h] = objs

        def hw_key(r):
            k = r.get("kind")
            if k == "passthrough":
                return ("pt", r.get("gpu"))
            if k == "vgpu":
                return ("vgpu", r.get("id"))
            if k == "mig-gi":
                return ("gi", f"{r.get('gpu')}/{r.get('gi')}")
            return None

        # I1: the agents' records
        for h, vms in avms.items():
            owner = {}
            for n, v in vms.items():
                for r in v.get("hw") or []:
                    k = hw_key(r)
                    if k is None:
                        continue
                    if k in owner and owner[k] != n:
                        violation("I1", f"{h}: {k[0]} {k[1]} is recorded by VMs '{owner[k]}' and "
                                  f"'{n}'")
                    owner[k] = n
        # I1: the controller's placements (a VM on the move holds its target too)
        held = {}
        for n, v in cvm.items():
            pls = [v.get("placement")]
            if isinstance(v.get("migration"), dict):
                pls.append(v["migration"].get("placement"))
            for pl in pls:
                if not isinstance(pl, dict):
                    continue
                for g in pl.get("gpus") or []:
                    held.setdefault((pl.get("host"), g.get("pci")), []).append((n, g))
        for (h, pci), lst in held.items():
            names = {n for n, _ in lst}
            if len(names) < 2:
                continue
            wholes = [n for n, g in lst if g.get("alloc") == "whole"]
            if wholes:
                violation("I1", f"{h} {pci}: whole GPU placed for {sorted(wholes)} and also for "
                          f"{sorted(names - set(wholes)) or sorted(names)}")
            # (the placement names no slice count: two instances at one start slice overlap; the
            # agents' GPU instance records above catch the rest)
            migs = [(n, g) for n, g in lst if g.get("alloc") in ("mig", "mig-vgpu")]
            for i in range(len(migs)):
                for j in range(i + 1, len(migs)):
                    (n1, g1), (n2, g2) = migs[i], migs[j]
                    if n1 != n2 and g1.get("start") == g2.get("start"):
                        violation("I1", f"{h} {pci}: MIG slices of '{n1}' and '{n2}' both start at "
                                  f"slice {g1.get('start')}")

        # I3: hardware ⊆ agents' records; agents' VMs ⊆ controller's VMs on that host
        for h in agents:
            recorded = {hw_key(r) for v in avms[h].values() for r in v.get("hw") or []}
            # (hardware that is the host's configuration, set through the agent's GPU routes,
            # is the host's: the agent's reconcile report names the rest as orphans)
            for o in sorted((hw[h] - recorded) & orphans[h], key=str):
                violation("I3", f"{h}: {o[0]} {o[1]} exists on the host, no VM of its agent "
                          "records it, and a reconcile pass did not remove it")
            for o in sorted(recorded - hw[h] - {None}, key=str):
                # a record of hardware that is gone is a VM that will fail to start: say so too
                violation("I3", f"{h}: the agent records {o[0]} {o[1]} that the host does not have")
            for n, v in avms[h].items():
                c = cvm.get(n)
                mig = c.get("migration") if c else None
                if not c or (c.get("host") != h and not (isinstance(mig, dict)
                                                          and mig.get("host") == h)):
                    violation("I3", f"{h}: the agent has VM '{n}' (phase {v.get('phase')}) that "
                              f"the controller places {'nowhere' if not c else 'on ' + str(c.get('host'))}")
        for n, v in cvm.items():
            if v.get("state") == "running":
                av = avms.get(v.get("host"), {}).get(n)
                if not av or av.get("phase") != "running":
                    violation("I3", f"the controller says '{n}' runs on {v.get('host')}, its agent "
                              f"says {av.get('phase') if av else 'it has no such VM'}")

        # I2: the history
        if a.history:
            last, last_ack = {}, {}
            # the calls attempted on each VM since its last acknowledged one: a create or a
            # delete that was not acknowledged may still have happened (a failed create leaves
            # the VM, failed; a delete the controller died in may have finished)
            since_ack = {}
            order = []
            try:
                for line in open(a.history):
                    line = line.strip()
                    if not line:
                        continue
                    e = json.loads(line)
                    order.append(e)
            except (OSError, ValueError) as e:
                print(f"invariants: cannot read the history '{a.history}': {e}", file=sys.stderr)
                return None, 2
            for e in order:
                vm = e.get("vm")
                ack = 200 <= int(e.get("status") or 0) < 300 and e.get("state") == "succeeded"
                last[vm] = e
                if ack:
                    last_ack[vm] = e
                    since_ack[vm] = set()
                else:
                    since_ack.setdefault(vm, set()).add(e.get("op"))
                e["_ack"] = ack
            for vm, e in last.items():
                c = cvm.get(vm)
                op = e.get("op")
                ev = f"(last call: {json.dumps({k: x for k, x in e.items() if k != '_ack'})})"
                if e["_ack"]:
                    if op == "delete" and c:
                        violation("I2", f"'{vm}' was deleted (acknowledged) but exists, "
                                  f"{c.get('state')} {ev}")
                    elif op != "delete" and not c:
                        violation("I2", f"'{vm}': an acknowledged {op} and no later call, but the "
                                  f"VM is gone {ev}")
                    elif c:
                        want = {"create": "running", "start": "running", "stop": "stopped",
                                "migrate": None}.get(op)
                        if want and c.get("state") != want:
                            violation("I2", f"'{vm}': an acknowledged {op}, no later call, but the "
                                      f"VM is {c.get('state')} {ev}")
                        if op == "migrate" and e.get("to") and c.get("host") != e.get("to"):
                            violation("I2", f"'{vm}': an acknowledged move to {e.get('to')}, but "
                                      f"the VM is on {c.get('host')} {ev}")
                else:
                    # not acknowledged: the last acknowledged call still bounds what may be
                    la = last_ack.get(vm)
                    tried = since_ack.get(vm, set())
                    if la and la.get("op") == "create" and "delete" not in tried and not c:
                        violation("I2", f"'{vm}': created (acknowledged), no delete attempted since, "
                                  f"but the VM is gone {ev}")
                    if la and la.get("op") == "delete" and "create" not in tried and c:
                        violation("I2", f"'{vm}': deleted (acknowledged), no create attempted since, "
                                  f"but the VM exists {ev}")

        # I4
        if a.pids_before:
            try:
                before = json.load(open(a.pids_before))
            except (OSError, ValueError) as e:
                print(f"invariants: cannot read '{a.pids_before}': {e}", file=sys.stderr)
                return None, 2
            for n, b in before.items():
                av = avms.get(b["host"], {}).get(n)
                if av and av.get("phase") == "running" and av.get("pid") != b["pid"]:
                    violation("I4", f"'{n}' on {b['host']} ran as QEMU pid {b['pid']} before the "
                              f"kill and as pid {av.get('pid')} after: recovery restarted it")
                c = cvm.get(n)
                if not av and c and c.get("host") == b["host"] and c.get("state") == "running":
                    violation("I4", f"'{n}' ran on {b['host']} (pid {b['pid']}) before the kill; "
                              "its agent has lost it")
        if a.save_pids:
            pids = {n: {"host": h, "pid": v.get("pid")} for h, vms in avms.items()
                    for n, v in vms.items() if v.get("phase") == "running" and v.get("pid")}
            with open(a.save_pids, "w") as f:
                json.dump(pids, f)

        stats[:] = [len(cvm), sum(len(x) for x in avms.values()),
                    sum(len(x) for x in hw.values())]
        return bad, 0
    deadline = time.monotonic() + a.settle
    while True:
        bad, rc = evaluate()
        if bad is None:
            return rc
        if not bad or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    for b in bad:
        print(b)
    if not a.quiet:
        print(f"invariants: {stats[0]} VMs, {stats[1]} agent VMs, {stats[2]} hardware objects, "
              f"{len(bad)} violation(s)",
              file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
