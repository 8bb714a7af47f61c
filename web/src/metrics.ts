// SPDX-License-Identifier: MIT
// metrics.ts — figures from the controller's metrics history (docs/api.md "Metrics"):
//   GET /api/v1/metrics                            the latest values: {"hosts": [...], "vms": [...]}
//   GET /api/v1/metrics?series=vm/NAME&range=15m   one entity's history as columnar arrays:
//        {"timestamps_ms": [...], "columns": [{"name", "unit", "slot"?, "values": [...]}], "gpus"}
// Read defensively: a controller without the route answers 404 and the pages say "no metrics
// yet"; null values are gaps, never zeros.
import { ApiError, enc, get } from './api';
import { notify } from './store';

export type Status = 'unknown' | 'ok' | 'absent' | 'error';

export interface Series {
        t: number[]; // seconds since the epoch (uPlot's x)
        cols: Record<string, (number | null)[]>;
        units: Record<string, string>;
        gpus: { slot: number; gpu: string; mode: string; profile?: string }[];
}

type J = Record<string, unknown>;
const num = (v: unknown): number | null => (typeof v === 'number' && isFinite(v) ? v : null);
const obj = (v: unknown): J | null => (v && typeof v === 'object' && !Array.isArray(v) ? v as J : null);
const arr = (v: unknown): J[] => (Array.isArray(v) ? v.map(obj).filter((x): x is J => !!x) : []);

export interface VmNow { cpu: number | null; rss: number | null; gpuUtil: number | null; gpuWhy: string | null }
export interface HostNow { cpu: number | null; memUsed: number | null; memTotal: number | null }

export const metrics = {
        status: 'unknown' as Status,
        why: '',
        hosts: new Map<string, HostNow>(),
        vms: new Map<string, VmNow>(),
};

// Why a VM's GPU has no utilization ("not reported by this GPU", a pass-through GPU's
// "not visible to the host driver").
function gpuWhy(gpus: J[]): string | null {
        for (const g of gpus)
                if (g.util_pct === null || g.util_pct === undefined) {
                        if (typeof g.util === 'string')
                                return g.util;
                        if (typeof g.visibility === 'string')
                                return g.visibility;
                }
        return null;
}

function takeLatest(ans: unknown): void {
        const o = obj(ans) ?? {};
        metrics.hosts.clear();
        metrics.vms.clear();
        for (const x of arr(o.hosts)) {
                const name = typeof x.host === 'string' ? x.host : typeof x.name === 'string' ? x.name : null;
                if (!name)
                        continue;
                const cpu = obj(x.cpu) ?? obj(obj(x.host)?.cpu) ?? {};
                const mem = obj(x.memory) ?? obj(obj(x.host)?.memory) ?? {};
                metrics.hosts.set(name, { cpu: num(cpu.util_pct), memUsed: num(mem.used_mib), memTotal: num(mem.total_mib) });
        }
        for (const v of arr(o.vms)) {
                if (typeof v.vm !== 'string')
                        continue;
                const gpus = arr(v.gpus);
                const utils = gpus.map((g) => num(g.util_pct)).filter((u): u is number => u !== null);
                metrics.vms.set(v.vm, {
                        cpu: num(obj(v.cpu)?.util_pct), rss: num(obj(v.memory)?.rss_mib),
                        gpuUtil: utils.length ? Math.max(...utils) : null, gpuWhy: gpuWhy(gpus),
                });
        }
}

function failed(e: unknown): void {
        metrics.status = e instanceof ApiError && e.status === 404 ? 'absent' : 'error';
        metrics.why = e instanceof Error ? e.message : String(e);
}

async function poll(): Promise<void> {
        try {
                takeLatest(await get<unknown>('/api/v1/metrics'));
                metrics.status = 'ok';
                metrics.why = '';
        } catch (e) {
                failed(e);
        }
        notify();
}

let users = 0;
let timer: number | null = null;

// A page that shows live figures holds the poller of the latest values while it is open.
export function hold(): () => void {
        users++;
        if (users === 1) {
                void poll();
                timer = window.setInterval(() => { if (!document.hidden) void poll(); }, 2000);
        }
        return () => {
                users--;
                if (!users && timer !== null) {
                        clearInterval(timer);
                        timer = null;
                }
        };
}

function toSeries(ans: unknown): Series {
        const o = obj(ans) ?? {};
        const ts = Array.isArray(o.timestamps_ms) ? o.timestamps_ms as number[] : [];
        const s: Series = { t: ts.map((x) => x / 1000), cols: {}, units: {}, gpus: [] };
        for (const c of arr(o.columns)) {
                if (typeof c.name !== 'string' || !Array.isArray(c.values))
                        continue;
                s.cols[c.name] = (c.values as unknown[]).map(num);
                s.units[c.name] = typeof c.unit === 'string' ? c.unit : '';
        }
        for (const g of arr(o.gpus))
                s.gpus.push({ slot: num(g.slot) ?? 0, gpu: String(g.gpu ?? ''), mode: String(g.mode ?? ''),
                              profile: typeof g.profile === 'string' ? g.profile : undefined });
        return s;
}

// Follow one entity's history ("vm/NAME", "host/NAME"): cb gets the series, or null and why
// not (the API's words), now and every 2 s until the returned function is called.
export function watch(series: string, range: string, cb: (s: Series | null, why: string) => void): () => void {
        let stopped = false;
        const once = async () => {
                try {
                        const ans = await get<unknown>(`/api/v1/metrics?series=${enc(series)}&range=${enc(range)}`);
                        if (!stopped)
                                cb(toSeries(ans), '');
                } catch (e) {
                        // 404 with ENOENT: the route is there, the entity has no samples yet (a
                        // new VM); any other failure: this controller has no metrics.
                        const msg = e instanceof Error ? e.message : String(e);
                        if (!stopped)
                                cb(null, e instanceof ApiError && e.status === 404 && e.problem?.errno === 'ENOENT'
                                        ? `no samples yet: ${msg}` : `no metrics yet (${msg})`);
                }
        };
        void once();
        const t = window.setInterval(() => { if (!document.hidden) void once(); }, 2000);
        return () => {
                stopped = true;
                clearInterval(t);
        };
}
