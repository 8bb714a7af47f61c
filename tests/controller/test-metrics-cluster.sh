#!/bin/bash
# SPDX-License-Identifier: MIT
# The controller's metrics on a simulated cluster of two dgx-h100 hosts (contrib/sim-cluster.sh,
# real QEMU on TCG, metrics-interval 250 ms): a vGPU VM and a pass-through VM on node-a, a
# MIG-backed vGPU VM on node-b; the simulator's load is pinned (gpuvirt-sim load) so that
# GET /api/v1/metrics and the Prometheus /metrics (over TCP with a viewer token) must show exactly
# those figures for the right VM, GPU and host: the vGPU's utilization and framebuffer, the GPU
# instance's memory with no utilization (absent, not 0), the pass-through GPU with no values
# at all, a GPU's utilization, power and temperature; the history (?series&range) carries them as
# columns; bad parameters are refused naming the valid values; the exposition passes promtool
# (Debian's prometheus package), a real parser.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_init mc

printf 'metrics-interval = 250\n' >"$TEST_TMP/controller.conf"
cluster_start --hosts 2 --profiles dgx-h100,dgx-h100 --accel tcg \
        --same-group --controller-config "$TEST_TMP/controller.conf"

# metrics_until NAME JQ [PATH]: poll the controller's GET PATH (default /api/v1/metrics) until
# JQ holds (10 s).
metrics_until() {
        local deadline=$((SECONDS + 10))
        while [ $SECONDS -lt $deadline ]; do
                capi GET "${3:-/api/v1/metrics}"
                [ "$HTTP" = 200 ] && jq -e "$2" <<<"$OUT" >/dev/null 2>&1 && { _ok "$1"; return 0; }
                sleep 0.2
        done
        _not_ok "$1" "never held: $2" "last: $(head -c 1500 <<<"$OUT")"
}

metrics_until "metrics from both hosts, the interval configured, no VM yet" \
        '.interval_ms == 250 and ([.hosts[] | select(.error == null) | .host] | sort) == ["node-a", "node-b"] and .vms == []'

# ---- three VMs
create v1 '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
check "v1 (vGPU) runs on node-a" 200 '.state == "succeeded"'
create p1 '{"kind": "passthrough", "count": 1}' node-a
check "p1 (pass-through) runs on node-a" 200 '.state == "succeeded"'
create m1 '{"kind": "vgpu", "type": "H100XM-1-10C"}' node-b
check "m1 (MIG-backed vGPU) runs on node-b" 200 '.state == "succeeded"'
capi GET /api/v1/vms/v1
V1_PCI=$(jqo '.placement.gpus[0].pci')
capi GET /api/v1/vms/p1
P1_PCI=$(jqo '.placement.gpus[0].pci')
capi GET /api/v1/vms/m1
M1_PCI=$(jqo '.placement.gpus[0].pci')
aapi node-a /v1/vms/v1
VF=$(jqo '.hw[] | select(.kind == "vgpu") | .id')
aapi node-b /v1/vms/m1
GI=$(jqo '.hw[] | select(.kind == "mig-gi") | .gi')
[ -n "$VF" ] && [ -n "$GI" ] && [ -n "$V1_PCI" ] && _ok "v1's VF $VF on $V1_PCI, m1's GPU instance $GI on $M1_PCI" ||
        _not_ok "the VMs' hardware is known" "VF '$VF' GI '$GI' PCI '$V1_PCI'"

# ---- pin the load
run "$GPUVIRT_SIM" load --root "$(host_var node-a ROOT)" --vgpu "$VF" --util 73 --memory-used 5000
assert_rc 0 "pin v1's vGPU: 73 % SM, 5000 MiB"
run "$GPUVIRT_SIM" load --root "$(host_var node-a ROOT)" --gpu "$V1_PCI" --util 55 --power 321 --temperature 61
assert_rc 0 "pin v1's GPU: 55 %, 321 W, 61 C"
run "$GPUVIRT_SIM" load --root "$(host_var node-b ROOT)" --gpu "$M1_PCI" --gi "$GI" --memory-used 1234
assert_rc 0 "pin m1's GPU instance: 1234 MiB"

# ---- GET /api/v1/metrics: the pinned figures, each for the right VM and host
V1='.vms[] | select(.vm == "v1")'
metrics_until "v1 on node-a: its vGPU at 73 % and 5000 MiB, profile H100XM-20C, beside its CPU and RSS" \
        "[$V1 | select(.host == \"node-a\" and .memory.rss_mib > 0 and (.cpu | has(\"util_pct\"))) | .gpus[] | select(.mode == \"vgpu\" and .gpu == \"$V1_PCI\" and .util_pct == 73 and .memory_used_mib == 5000 and .profile == \"H100XM-20C\" and (.gpu_uuid | startswith(\"GPU-\")))] | length == 1"
metrics_until "m1 on node-b: its GPU instance's 1234 MiB, utilization null (not reported)" \
        "[.vms[] | select(.vm == \"m1\" and .host == \"node-b\") | .gpus[] | select(.mode == \"mig-vgpu\" and .gpu == \"$M1_PCI\" and .memory_used_mib == 1234 and .util_pct == null and .profile == \"H100XM-1-10C\")] | length == 1"
metrics_until "p1 on node-a: its pass-through GPU not visible, values null" \
        "[.vms[] | select(.vm == \"p1\" and .host == \"node-a\") | .gpus[] | select(.mode == \"passthrough\" and .gpu == \"$P1_PCI\" and .util_pct == null and .memory_used_mib == null)] | length == 1"
metrics_until "node-a's GPU $V1_PCI at 55 %, 321 W, 61 C; node-b's host CPU and memory" \
        "([.hosts[] | select(.host == \"node-a\") | .gpus[] | select(.gpu == \"$V1_PCI\" and .util_pct == 55 and .power_mw == 321000 and .temperature_c == 61)] | length == 1) and ([.hosts[] | select(.host == \"node-b\" and .error == null and .memory.used_mib > 0)] | length == 1)"

# ---- the history
metrics_until "vm/v1 history: columns over one time axis, the vGPU's 73 % in its last points" \
        '.kind == "vm" and .aggregate == "none" and .step_ms == 250 and (.timestamps_ms | length) > 4 and ([.columns[] | select(.name == "gpu0_util_pct") | .values | length] == [(.timestamps_ms | length)]) and ([.columns[] | select(.name == "gpu0_util_pct") | .values[-1]] == [73]) and .gpus[0].profile == "H100XM-20C" and .labels.host == "node-a"' \
        '/api/v1/metrics?series=vm/v1&range=5m'
metrics_until "vm/m1 history: gpu0_util_pct all null (a gap, never 0), gpu0_memory_used_mib 1234" \
        '([.columns[] | select(.name == "gpu0_util_pct") | .values | all(. == null)] == [true]) and ([.columns[] | select(.name == "gpu0_memory_used_mib") | .values[-1]] == [1234])' \
        '/api/v1/metrics?series=vm/m1&range=5m'
capi GET "/api/v1/metrics?series=gpu/node-a/$V1_PCI&range=24h"
check "gpu/node-a/$V1_PCI over 24 h: per-minute min/avg/max, 1440 points, this minute's span holding the pinned 55 and 321 W" 200 \
        '.aggregate == "minute" and (.timestamps_ms | length) == 1440 and ([.columns[] | select(.name == "util_pct") | .min[-1] <= 55 and .max[-1] >= 55 and .min[-1] <= .values[-1] and .values[-1] <= .max[-1]] == [true]) and ([.columns[] | select(.name == "power_w") | .min[-1] <= 321 and .max[-1] >= 321] == [true]) and .timestamps_ms[-1] % 60000 == 0'
capi GET '/api/v1/metrics?series=vm/v1&range=2h'
check "range 2h is refused naming the valid ranges" 400 '.detail | test("5m, 15m, 1h") and test("24h")'
capi GET '/api/v1/metrics?series=disk/x'
check "series disk/x is refused naming the valid forms" 400 '.detail | test("host/HOST") and test("gpu/HOST/PCI") and test("vm/VM")'
capi GET '/api/v1/metrics?series=vm/nope'
check "an unknown VM is 404" 404 '.detail | test("vm/nope")'
capi GET '/api/v1/metrics?range=1h'
check "range without series is refused" 400 '.detail | test("needs a series")'
capi GET '/api/v1/metrics?step=1'
check "an unknown parameter is refused, the valid ones named" 400 '.detail | test("series") and test("range")'

# ---- Prometheus /metrics over TCP with a viewer token
capi POST /api/v1/tokens '{"name": "prometheus", "role": "viewer"}'
TOKEN=$(jqo .token)
printf '%s' "$TOKEN" >"$TEST_TMP/token"
scrape() {
        HTTP=$(curl -s -o "$TEST_TMP/metrics.txt" -w '%{http_code}' --max-time 10 "$@" "$CONTROLLER_URL/metrics")
}
scrape
assert_eq "$HTTP" 401 "/metrics without a token is 401"
has() { grep -qxF -- "$1" "$TEST_TMP/metrics.txt"; }
deadline=$((SECONDS + 10))
while :; do
        scrape -H "Authorization: Bearer $(cat "$TEST_TMP/token")"
        has "gpuvirt_vm_gpu_util{host=\"node-a\",vm=\"v1\",slot=\"0\",gpu=\"$V1_PCI\",gpu_uuid=\"$(grep -o "gpuvirt_gpu_util{host=\"node-a\",gpu=\"$V1_PCI\",gpu_uuid=\"[^\"]*" "$TEST_TMP/metrics.txt" | sed 's/.*gpu_uuid="//')\",mode=\"vgpu\",profile=\"H100XM-20C\"} 73" && break
        [ $SECONDS -ge $deadline ] && break
        sleep 0.3
done
assert_eq "$HTTP" 200 "/metrics with a viewer token is 200"
grep -q "^gpuvirt_vm_gpu_util{host=\"node-a\",vm=\"v1\",slot=\"0\",gpu=\"$V1_PCI\",gpu_uuid=\"GPU-[^\"]*\",mode=\"vgpu\",profile=\"H100XM-20C\"} 73$" "$TEST_TMP/metrics.txt" &&
        _ok "gpuvirt_vm_gpu_util: v1's vGPU at 73 with its host, GPU, UUID, mode and profile" ||
        _not_ok "gpuvirt_vm_gpu_util: v1's vGPU at 73" "$(grep gpuvirt_vm_gpu_util "$TEST_TMP/metrics.txt")"
grep -q "^gpuvirt_vm_gpu_fb_used{host=\"node-a\",vm=\"v1\",.*} 5000$" "$TEST_TMP/metrics.txt" &&
        _ok "gpuvirt_vm_gpu_fb_used: v1's 5000 MiB" || _not_ok "gpuvirt_vm_gpu_fb_used: v1's 5000 MiB" "$(grep gpuvirt_vm_gpu_fb_used "$TEST_TMP/metrics.txt")"
grep -q "^gpuvirt_vm_gpu_fb_used{host=\"node-b\",vm=\"m1\",slot=\"0\",gpu=\"$M1_PCI\",gpu_uuid=\"GPU-[^\"]*\",mode=\"mig-vgpu\",profile=\"H100XM-1-10C\"} 1234$" "$TEST_TMP/metrics.txt" &&
        _ok "gpuvirt_vm_gpu_fb_used: m1's GPU instance at 1234 on node-b" || _not_ok "m1's 1234 MiB" "$(grep 'vm="m1"' "$TEST_TMP/metrics.txt")"
! grep -q '^gpuvirt_vm_gpu_util{.*vm="m1"' "$TEST_TMP/metrics.txt" &&
        _ok "m1's utilization is absent (not reported by the GPU), not 0" || _not_ok "m1's utilization is absent" "$(grep 'vm="m1"' "$TEST_TMP/metrics.txt")"
grep -q "^gpuvirt_vm_gpu_info{host=\"node-a\",vm=\"p1\",slot=\"0\",gpu=\"$P1_PCI\",gpu_uuid=\"[^\"]*\",mode=\"passthrough\",profile=\"\"} 1$" "$TEST_TMP/metrics.txt" &&
        _ok "gpuvirt_vm_gpu_info maps p1 to its pass-through GPU" || _not_ok "p1's info series" "$(grep 'vm="p1"' "$TEST_TMP/metrics.txt")"
! grep -qE "^gpuvirt_(vm_gpu_util|vm_gpu_fb_used|gpu_util|gpu_fb_used|gpu_power_usage|gpu_temp)\{host=\"node-a\",[^}]*gpu=\"$P1_PCI\"" "$TEST_TMP/metrics.txt" &&
        _ok "the pass-through GPU has no values (absent, never 0)" || _not_ok "the pass-through GPU has no values" "$(grep "host=\"node-a\".*$P1_PCI" "$TEST_TMP/metrics.txt")"
for f in "gpuvirt_gpu_util{host=\"node-a\",gpu=\"$V1_PCI\",.*} 55" "gpuvirt_gpu_power_usage{host=\"node-a\",gpu=\"$V1_PCI\",.*} 321" \
        "gpuvirt_gpu_temp{host=\"node-a\",gpu=\"$V1_PCI\",.*} 61"; do
        grep -q "^$f$" "$TEST_TMP/metrics.txt" && _ok "${f%%\{*}: the pinned figure of node-a's $V1_PCI" || _not_ok "$f" "$(grep "${f%%\{*}" "$TEST_TMP/metrics.txt" | head -3)"
done
grep -qE '^gpuvirt_vm_mem_rss\{host="node-a",vm="v1"\} [1-9][0-9]*$' "$TEST_TMP/metrics.txt" &&
        grep -qE '^gpuvirt_host_mem_used\{host="node-b"\} [1-9]' "$TEST_TMP/metrics.txt" &&
        _ok "host and VM memory are there (v1's RSS, node-b's memory used)" || _not_ok "host and VM memory" "$(grep -E 'mem_' "$TEST_TMP/metrics.txt" | head)"
grep -q '^gpuvirt_host_up{host="node-b"} 1$' "$TEST_TMP/metrics.txt" && _ok "gpuvirt_host_up: node-b 1" || _not_ok "node-b up" "$(grep host_up "$TEST_TMP/metrics.txt")"
assert_eq "$(grep -c '^# TYPE gpuvirt_gpu_util ' "$TEST_TMP/metrics.txt")" 1 "each family once"

DASH=$(cd "$(dirname "$0")/../.." && pwd)/contrib/grafana/gpuvirt-dashboard.json
missing=$(jq -r '.panels[].targets[]?.expr' "$DASH" | grep -o 'gpuvirt_[a-z_]*' | sort -u |
        while read -r f; do grep -q "^# TYPE $f " "$TEST_TMP/metrics.txt" || echo "$f"; done)
[ -z "$missing" ] && _ok "every family the Grafana dashboard queries is in the exposition" ||
        _not_ok "every family the Grafana dashboard queries is in the exposition" "missing: $missing"

if command -v promtool >/dev/null; then
        run promtool check metrics <"$TEST_TMP/metrics.txt"
        assert_rc 0 "promtool check metrics: the exposition parses and lints clean"
else
        _ok "promtool check metrics # SKIP promtool is not installed (Debian package prometheus; ./deps/install-debian.sh installs it)"
fi

# ---- a deleted VM leaves the latest values at once (its history stays a while)
capi DELETE '/api/v1/vms/p1?wait=60'
check "p1 deleted" 200 '.state == "succeeded"'
metrics_until "p1 is gone from the latest values" '[.vms[].vm] | index("p1") == null'
capi GET '/api/v1/metrics?series=vm/p1&range=5m'
check "... its history is still there for a while" 200 '.series == "vm/p1"'

"$LAUNCH" stop "$CL" >/dev/null 2>&1
grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$CL"/logs/*.log >/dev/null 2>&1 &&
        _not_ok "no sanitizer report from the daemons" "$(grep -hm3 -E 'Sanitizer|runtime error' "$CL"/logs/*.log)" ||
        _ok "no sanitizer report from the daemons"
done_testing
