// SPDX-License-Identifier: MIT
// dashboard-load.mjs — the web dashboard's first load over loopback beside a minimal static
// page of the same server, in one run (issue 7, BENCHMARKS.md "Dashboard first load"). Run by
// dashboard-load.sh, which builds the dashboard, adds the baseline page and starts the cluster.
//
//   node dashboard-load.mjs --url CONTROLLER_URL --token TOKEN --hosts N --dist DIR
//        --playwright PATH/index.mjs --chromium PATH [--runs N] [--timeout-ms MS] [--out CSV]
//
// One chromium (headless, launched once, not timed). Each load is cold: a new browser context
// (empty cache, cookies and storage) and a new page. After one untimed warm-up load of each
// target, --runs rounds (default 20) load both targets, the one that goes first alternating:
//
//   dashboard  URL/ui/#token=TOKEN (as contrib/sim-cluster.sh prints it): index.html, its
//              hashed script and stylesheet, then the page's API reads (hosts, GPUs, VMs,
//              operations, metrics) and the event stream. Times, from the navigation's start
//              (performance.now() in the page): the first host row (tr[data-host]), the
//              overview drawn (every host row and 8 GPU rows per host: tr[data-gpu]; the
//              overview has no "data loaded" marker of its own), DOMContentLoaded and load
//              (the navigation entry's domContentLoadedEventEnd, loadEventEnd). A
//              MutationObserver installed before the page's scripts (addInitScript) takes the
//              times. Then, as context, a reload in the same context (cache warm).
//   baseline   URL/ui/empty.html: the same server and route (src/controller/web.c), one
//              HTML file of 100-odd bytes; its marker is its paragraph #ready.
//
// Per load also: requests (every request the page made until the marker and the load event,
// the event stream included), and from Resource Timing of the completed ones, the navigation
// included: bytes transferred (headers and body as received), body bytes as received
// (encoded) and decoded. The first dashboard load also gzips each body (zlib level 6) to show
// what compression would save, and lists the requests. Checked per load: status 200, the
// marker reached within --timeout-ms, no page error; the dashboard's host and GPU rows.
// Output: p50/p90/max (nearest rank), min and mean per row. Exit 0 measured, 1 a check failed,
// 2 usage.
import { writeFileSync } from 'node:fs';
import { performance as nodePerf } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';

const PROG = 'bench-dashboard';
const usage = `Usage: node dashboard-load.mjs --url URL --token TOKEN --hosts N --dist DIR
                               --playwright PATH --chromium PATH [--runs N] [--timeout-ms MS]
                               [--out CSV]
  --runs N          timed rounds, each one cold load per target (default 20)
  --timeout-ms MS   the longest a load may take to its marker (default 30000)
  --out CSV         one line per load
`;

function usageError(msg) {
        process.stderr.write(`${PROG}: ${msg}\nRun 'dashboard-load.sh --help' for usage.\n`);
        process.exit(2);
}

function parseArgs(argv) {
        const o = { runs: 20, timeoutMs: 30000, hosts: 2 };
        const num = (name, v, lo, hi) => {
                if (!/^[0-9]+$/.test(v ?? '') || Number(v) < lo || Number(v) > hi)
                        usageError(`${name} needs a whole number from ${lo} to ${hi}, not '${v ?? ''}'.`);
                return Number(v);
        };
        for (let i = 0; i < argv.length; i++) {
                const a = argv[i];
                const v = argv[i + 1];
                switch (a) {
                case '--check-args': o.checkOnly = true; continue;
                case '--help': case '-h': process.stdout.write(usage); process.exit(0);
                case '--runs': o.runs = num(a, v, 1, 10000); break;
                case '--timeout-ms': o.timeoutMs = num(a, v, 1000, 600000); break;
                case '--hosts': o.hosts = num(a, v, 1, 8); break;
                case '--url': case '--token': case '--dist': case '--playwright': case '--chromium': case '--out':
                        if (v === undefined)
                                usageError(`${a} needs a value.`);
                        o[a.slice(2)] = v;
                        break;
                default:
                        usageError(`unknown option '${a}'; the options are --runs, --timeout-ms, --out (and, from dashboard-load.sh, --url, --token, --hosts, --dist, --playwright, --chromium).`);
                }
                i++;
        }
        if (o.checkOnly)
                process.exit(0);
        for (const k of ['url', 'token', 'playwright', 'chromium'])
                if (!o[k])
                        usageError(`--${k} is missing (dashboard-load.sh passes it).`);
        return o;
}

const o = parseArgs(process.argv.slice(2));
const { chromium } = await import(o.playwright);

function fail(msg) {
        const e = new Error(msg);
        e.benchCheck = true;
        return e;
}

// Installed before any of the page's scripts: the times at which the marker's elements appear.
function markerScript({ kind, hosts, gpus }) {
        const g = (window.__gvb = {});
        const now = () => performance.now();
        let obs = null;
        const check = () => {
                if (g.drawn !== undefined)
                        return;
                if (kind === 'baseline') {
                        if (document.getElementById('ready'))
                                g.drawn = now();
                } else {
                        const h = document.querySelectorAll('tr[data-host]').length;
                        if (h && g.hostRow === undefined)
                                g.hostRow = now();
                        if (h >= hosts && document.querySelectorAll('tr[data-gpu]').length >= gpus)
                                g.drawn = now();
                }
                if (g.drawn !== undefined && obs)
                        obs.disconnect();
        };
        obs = new MutationObserver(check);
        obs.observe(document, { childList: true, subtree: true });
        document.addEventListener('DOMContentLoaded', check);
}

const targets = {
        dashboard: { path: `/ui/#token=${o.token}`, kind: 'dashboard' },
        baseline: { path: '/ui/empty.html', kind: 'baseline' },
};
const want = { hosts: o.hosts, gpus: 8 * o.hosts };

// What the page measured: its marker times, the navigation's events, the completed resources.
async function pageFigures(page) {
        return page.evaluate(() => {
                const nav = performance.getEntriesByType('navigation')[0];
                const res = [nav, ...performance.getEntriesByType('resource')].filter(Boolean);
                const sum = (k) => res.reduce((s, e) => s + (e[k] ?? 0), 0);
                return {
                        drawn: window.__gvb?.drawn,
                        hostRow: window.__gvb?.hostRow,
                        dcl: nav?.domContentLoadedEventEnd,
                        load: nav?.loadEventEnd,
                        transfer: sum('transferSize'),
                        encoded: sum('encodedBodySize'),
                        decoded: sum('decodedBodySize'),
                        entries: res.map((e) => ({ name: e.name, start: e.startTime, end: e.responseEnd,
                                                   transfer: e.transferSize })),
                };
        });
}

async function waitMarker(page, target) {
        await page.waitForFunction(() => window.__gvb && window.__gvb.drawn !== undefined &&
                                   performance.getEntriesByType('navigation')[0]?.loadEventEnd > 0,
                                   null, { timeout: o.timeoutMs, polling: 10 });
        if (target.kind === 'dashboard') {
                const rows = await page.evaluate(() => ({
                        hosts: document.querySelectorAll('tr[data-host]').length,
                        gpus: document.querySelectorAll('tr[data-gpu]').length,
                }));
                if (rows.hosts !== want.hosts || rows.gpus !== want.gpus)
                        throw fail(`the overview drew ${rows.hosts} hosts and ${rows.gpus} GPUs, not ${want.hosts} and ${want.gpus}`);
        }
}

// One cold load (a new context); detail: gzip every body and list the requests.
async function load(browser, name, detail = false) {
        const target = targets[name];
        const ctx = await browser.newContext({ viewport: { width: 1500, height: 950 } });
        try {
                await ctx.addInitScript(markerScript, { kind: target.kind, ...want });
                const page = await ctx.newPage();
                const errors = [];
                const requests = [];
                const responses = [];
                let counting = true;
                page.on('pageerror', (e) => errors.push(e.message));
                page.on('request', (r) => { if (counting) requests.push(r); });
                page.on('response', (r) => responses.push(r));
                const t0 = nodePerf.now();
                const resp = await page.goto(`${o.url}${target.path}`, { waitUntil: 'commit', timeout: o.timeoutMs });
                if (!resp || resp.status() !== 200)
                        throw fail(`${name}: GET ${target.path.replace(/#.*/, '')} answered ${resp?.status()}, not 200`);
                await waitMarker(page, target);
                const wall = nodePerf.now() - t0;
                counting = false;
                const f = await pageFigures(page);
                if (errors.length)
                        throw fail(`${name}: page errors: ${errors.join('; ')}`);
                const out = { name, wall, ...f, requests: requests.length };
                if (detail) {
                        const enc = new Set();
                        let gz = 0, raw = 0;
                        for (const r of responses) {
                                const ce = (await r.allHeaders())['content-encoding'];
                                enc.add(ce ?? 'none');
                                if (r.request().url().includes('/api/v1/events'))
                                        continue; // a stream: no body to take
                                try {
                                        const b = await r.body();
                                        raw += b.length;
                                        gz += gzipSync(b, { level: 6 }).length;
                                } catch {
                                        // a redirect or a body the browser dropped
                                }
                        }
                        out.detail = { encodings: [...enc], raw, gz, entries: f.entries, drawn: f.drawn,
                                       requests: requests.map((r) => `${r.method()} ${new URL(r.url()).pathname}${new URL(r.url()).search}`) };
                }
                if (target.kind === 'dashboard') {
                        // Context: the same page reloaded in the same context (cache warm).
                        await page.evaluate(() => { delete window.__gvb; });
                        await page.reload({ waitUntil: 'commit', timeout: o.timeoutMs });
                        await waitMarker(page, target);
                        out.reload = await pageFigures(page);
                }
                return out;
        } finally {
                await ctx.close();
        }
}

function stats(xs) {
        const s = [...xs].sort((a, b) => a - b);
        const rank = (p) => s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
        return { p50: rank(50), p90: rank(90), max: s[s.length - 1], min: s[0],
                 mean: s.reduce((a, b) => a + b, 0) / s.length };
}

const browser = await chromium.launch({ executablePath: o.chromium,
                                        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const results = { dashboard: [], baseline: [] };
let detail = null;
let rc = 0;
try {
        // Warm-up: chromium's own first-use costs, and the detail (gzip, request list).
        detail = (await load(browser, 'dashboard', true)).detail;
        await load(browser, 'baseline');
        for (let i = 1; i <= o.runs; i++) {
                const order = i % 2 ? ['dashboard', 'baseline'] : ['baseline', 'dashboard'];
                for (const [k, name] of order.entries()) {
                        const r = await load(browser, name);
                        r.round = i;
                        r.first = k === 0;
                        results[name].push(r);
                }
        }
} catch (e) {
        process.stderr.write(`${PROG}: ${e.benchCheck ? e.message : e.stack ?? e}\n`);
        rc = 1;
} finally {
        await browser.close();
}
if (rc)
        process.exit(rc);

if (o.out) {
        const lines = ['round,target,first,marker_ms,host_row_ms,dcl_ms,load_ms,wall_ms,requests,transfer_bytes,encoded_bytes,decoded_bytes'];
        for (const name of ['dashboard', 'baseline'])
                for (const r of results[name])
                        lines.push([r.round, name, r.first ? 1 : 0, r.drawn.toFixed(1), r.hostRow?.toFixed(1) ?? '',
                                    r.dcl.toFixed(1), r.load.toFixed(1), r.wall.toFixed(1), r.requests, r.transfer,
                                    r.encoded, r.decoded].join(','));
        writeFileSync(o.out, lines.join('\n') + '\n');
}

const ver = browser.version();
const D = results.dashboard;
const B = results.baseline;
const row = (label, xs, unit = 'ms', digits = 1) => {
        const s = stats(xs);
        const f = (x) => x.toFixed(digits).padStart(10);
        console.log(`  ${label.padEnd(44)}${f(s.p50)}${f(s.p90)}${f(s.max)}${f(s.min)}${f(s.mean)}  ${unit}`);
};
console.log('gpuvirt dashboard first-load benchmark');
console.log(`browser: chromium ${ver} headless (playwright-core), launched once; a new context per load`);
console.log(`server:  the controller of contrib/sim-cluster.sh (${o.hosts} simulated dgx-h100 hosts, ${want.gpus} GPUs, no VMs) at ${o.url}`);
console.log(`method:  ${o.runs} rounds after one warm-up load of each; each round one cold load per target, the first alternating;`);
console.log('         times from the navigation\'s start (performance.now() in the page); nearest-rank percentiles');
console.log('');
console.log(`  ${''.padEnd(44)}${'p50'.padStart(10)}${'p90'.padStart(10)}${'max'.padStart(10)}${'min'.padStart(10)}${'mean'.padStart(10)}`);
console.log('  dashboard (/ui/#token=...), cold');
row('  first host row', D.map((r) => r.hostRow));
row('  overview drawn (every host and GPU row)', D.map((r) => r.drawn));
row('  DOMContentLoaded', D.map((r) => r.dcl));
row('  load event', D.map((r) => r.load));
row('  wall: goto() to marker seen (node side)', D.map((r) => r.wall));
row('  requests (to the marker and load)', D.map((r) => r.requests), 'requests', 0);
row('  transferred (headers + body, completed)', D.map((r) => r.transfer / 1024), 'KiB');
row('  bodies as received (encoded)', D.map((r) => r.encoded / 1024), 'KiB');
row('  bodies decoded', D.map((r) => r.decoded / 1024), 'KiB');
console.log('  baseline (/ui/empty.html, same server), cold');
row('  marker #ready', B.map((r) => r.drawn));
row('  DOMContentLoaded', B.map((r) => r.dcl));
row('  load event', B.map((r) => r.load));
row('  wall: goto() to marker seen (node side)', B.map((r) => r.wall));
row('  requests', B.map((r) => r.requests), 'requests', 0);
row('  transferred (headers + body)', B.map((r) => r.transfer / 1024), 'KiB');
console.log('  context: the dashboard reloaded in the same context (cache warm)');
row('  overview drawn', D.map((r) => r.reload.drawn));
row('  transferred', D.map((r) => r.reload.transfer / 1024), 'KiB');
const sd = stats(D.map((r) => r.drawn));
const sb = stats(B.map((r) => r.drawn));
console.log('');
console.log(`  overview drawn minus the baseline's marker: p50 ${(sd.p50 - sb.p50).toFixed(1)} ms, p90 ${(sd.p90 - sb.p90).toFixed(1)} ms`);
if (detail) {
        console.log(`  compression: responses served with content-encoding ${detail.encodings.join(', ')}; their bodies ` +
                    `${(detail.raw / 1024).toFixed(1)} KiB, gzip -6 would make them ${(detail.gz / 1024).toFixed(1)} KiB`);
        console.log(`  requests of the first load: ${detail.requests.join(', ')}`);
        console.log(`  the warm-up load's completed requests (ms from the navigation's start; overview drawn at ${detail.drawn.toFixed(1)}):`);
        for (const e of detail.entries) {
                const u = new URL(e.name);
                console.log(`    ${e.start.toFixed(1).padStart(7)} -> ${e.end.toFixed(1).padStart(7)}  ${String(e.transfer).padStart(7)} B  ${u.pathname}${u.search}`);
        }
}
console.log(`  checks: ${D.length} dashboard loads drew ${want.hosts} hosts and ${want.gpus} GPU rows, ${B.length} baseline loads their marker; ` +
            'every document 200, no page error');
