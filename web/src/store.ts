// SPDX-License-Identifier: MIT
// store.ts — what the dashboard knows of the cluster: hosts, GPUs, VMs, operations, images,
// fetched from the API and refreshed when the event stream says something changed (debounced),
// and every few seconds for the live values events do not carry (GPU utilization). Views
// subscribe and redraw.
import { ApiError, get } from './api';
import type { ClusterEvent, Gpu, Host, Image, Operation, Vm } from './types';

type Kind = 'hosts' | 'gpus' | 'vms' | 'ops' | 'images';

export const state = {
        hosts: [] as Host[],
        gpus: [] as Gpu[],
        vms: [] as Vm[],
        ops: [] as Operation[],
        images: [] as Image[],
        loaded: new Set<Kind>(),
        error: null as string | null, // the last failed refresh, as the API worded it
        lastEvent: null as ClusterEvent | null,
};

const listeners = new Set<() => void>();

export function subscribe(fn: () => void): () => void {
        listeners.add(fn);
        return () => listeners.delete(fn);
}

let notifyQueued = false;
export function notify(): void {
        if (notifyQueued)
                return;
        notifyQueued = true;
        requestAnimationFrame(() => {
                notifyQueued = false;
                for (const fn of [...listeners])
                        fn();
        });
}

const paths: Record<Kind, string> = {
        hosts: '/api/v1/hosts',
        gpus: '/api/v1/gpus',
        vms: '/api/v1/vms',
        ops: '/api/v1/operations?limit=200',
        images: '/api/v1/images',
};

async function load(kind: Kind): Promise<void> {
        try {
                const v = await get<unknown[]>(paths[kind]);
                (state as unknown as Record<Kind, unknown[]>)[kind] = Array.isArray(v) ? v : [];
                state.loaded.add(kind);
                state.error = null;
        } catch (e) {
                state.error = e instanceof ApiError ? e.message : String(e);
        }
}

const pending = new Set<Kind>();
let timer: number | null = null;

// Refresh these lists soon (one fetch each, however many events asked).
export function refresh(...kinds: Kind[]): Promise<void> {
        for (const k of kinds)
                pending.add(k);
        return new Promise((resolve) => {
                if (timer !== null)
                        clearTimeout(timer);
                timer = window.setTimeout(async () => {
                        timer = null;
                        const ks = [...pending];
                        pending.clear();
                        await Promise.all(ks.map(load));
                        notify();
                        resolve();
                }, state.loaded.size ? 100 : 0); // the first load at once; later ones batched
        });
}

export function refreshAll(): Promise<void> {
        return refresh('hosts', 'gpus', 'vms', 'ops', 'images');
}

// What an event changes.
export function onEvent(ev: ClusterEvent): void {
        state.lastEvent = ev;
        const t = ev.type;
        if (t.startsWith('host.'))
                void refresh('hosts', 'gpus');
        else if (t.startsWith('vm.'))
                void refresh('vms', 'gpus', 'hosts');
        else if (t.startsWith('gpu.'))
                void refresh('gpus');
        else if (t.startsWith('image.'))
                void refresh('images');
        if (t.startsWith('operation.')) {
                // Progress events carry the operation's new figures: show them at once.
                const id = ev.subject.replace(/^operation\//, '');
                const op = state.ops.find((o) => o.id === id);
                if (op && ev.data)
                        Object.assign(op, ev.data);
                void refresh('ops');
                if (t === 'operation.done')
                        void refresh('vms', 'gpus', 'hosts');
                notify();
        }
}

export function hostGpus(host: string): Gpu[] {
        return state.gpus.filter((g) => g.host === host).sort((a, b) => a.index - b.index);
}

export function hostVms(host: string): Vm[] {
        return state.vms.filter((v) => v.host === host);
}

export function vmByName(name: string): Vm | undefined {
        return state.vms.find((v) => v.name === name);
}
