// SPDX-License-Identifier: MIT
// gpu.ts — a GPU drawn as what it is divided into (UX.md: "a GPU as eight memory slices with
// MIG instances drawn on them, vGPU instances as a stacked bar of framebuffer"), and where a
// MIG profile or vGPU type would still fit, from the inventory and the catalog's MIG geometry.
import catalog from 'virtual:catalog';
import { h } from './dom';
import type { Gpu, Use, VgpuType } from './types';

export type Profile = (typeof catalog)[string]['profiles'][number];

export function migGeometry(model: string) {
        return catalog[model];
}

export function migProfiles(model: string): Profile[] {
        return catalog[model]?.profiles ?? [];
}

// The memory slices each GPU instance takes: [start, start + slices).
function occupied(g: Gpu): { start: number; slices: number; profile: string; id: number }[] {
        const prof = (name: string) => migProfiles(g.model).find((p) => p.name === name);
        return (g.mig?.gpu_instances ?? []).map((gi) => ({
                start: gi.start, slices: prof(gi.profile)?.memory_slices ?? gi.size,
                profile: gi.profile, id: gi.id,
        }));
}

// Free placements (first memory slice) of profile on a GPU in MIG mode as it is now.
export function freePlacements(g: Gpu, profile: string): number[] {
        const p = migProfiles(g.model).find((x) => x.name === profile);
        if (!p)
                return [];
        const taken = occupied(g);
        return p.placements.filter((s) => taken.every((t) =>
                s + p.memory_slices <= t.start || t.start + t.slices <= s));
}

function useOf(g: Gpu, match: (u: Use) => boolean): Use | undefined {
        return g.use.find(match);
}

const vmLink = (vm: string) => h('a', { href: `#/vms/${encodeURIComponent(vm)}`, class: 'vm' }, vm);

// MIG: one cell per memory slice, GPU instances as blocks over their slices (with the VM that
// holds each), free slices hatched, and per profile where it still fits.
export function drawMig(g: Gpu): HTMLElement {
        const geo = migGeometry(g.model);
        const n = g.mig?.memory_slices ?? geo?.memory_slices ?? 8;
        const grid = h('div', { class: 'slices', style: `grid-template-columns: repeat(${n}, 1fr)` });
        const taken = new Array(n).fill(false);
        for (const t of occupied(g)) {
                for (let i = t.start; i < Math.min(n, t.start + t.slices); i++)
                        taken[i] = true;
                const u = useOf(g, (u) => (u.alloc === 'mig' || u.alloc === 'mig-vgpu') &&
                                          u.start === t.start);
                const cell = h('div', { class: `gi ${u ? 'used' : 'idle'}`,
                                        title: `GPU instance ${t.id}: ${t.profile} at slice ${t.start}` },
                               h('b', null, t.profile), ' ', u ? vmLink(u.vm) : h('span', { class: 'muted' }, 'no VM'));
                cell.style.gridColumn = `${t.start + 1} / span ${t.slices}`;
                grid.appendChild(cell);
        }
        for (let i = 0; i < n; i++)
                if (!taken[i]) {
                        const cell = h('div', { class: 'free', title: `memory slice ${i}: free` }, String(i));
                        cell.style.gridColumn = `${i + 1} / span 1`;
                        grid.appendChild(cell);
                }
        const fits = migProfiles(g.model).filter((p) => !p.name.includes('+'))
                .map((p) => ({ p, at: freePlacements(g, p.name) })).filter((x) => x.at.length);
        return h('div', { class: 'mig' }, grid,
                 h('div', { class: 'fits muted' }, fits.length
                         ? ['fits: ', fits.map((x, i) => [i ? ' · ' : '', h('b', null, x.p.name), ` @${x.at.join(',')}`])]
                         : 'no free placement'));
}

// A MIG layout that is not (or not yet) the GPU's own, as drawMig draws one: the insights'
// current and planned layouts. An instance with cls "moved" is one the plan moves.
export interface SliceInstance { profile: string; start: number; vm: string | null; cls?: string; title?: string }

export function drawSlices(model: string, insts: SliceInstance[]): HTMLElement {
        const n = migGeometry(model)?.memory_slices ?? 8;
        const grid = h('div', { class: 'slices', style: `grid-template-columns: repeat(${n}, 1fr)` });
        const taken = new Array(n).fill(false);
        for (const t of insts) {
                const slices = migProfiles(model).find((p) => p.name === t.profile)?.memory_slices ?? 1;
                for (let i = t.start; i < Math.min(n, t.start + slices); i++)
                        taken[i] = true;
                const cell = h('div', { class: `gi ${t.vm ? 'used' : 'idle'} ${t.cls ?? ''}`,
                                        title: t.title ?? `${t.profile} at slice ${t.start}` },
                               h('b', null, t.profile), ' ', t.vm ? vmLink(t.vm) : h('span', { class: 'muted' }, 'no VM'));
                cell.style.gridColumn = `${t.start + 1} / span ${slices}`;
                grid.appendChild(cell);
        }
        for (let i = 0; i < n; i++)
                if (!taken[i]) {
                        const cell = h('div', { class: 'free', title: `memory slice ${i}: free` }, String(i));
                        cell.style.gridColumn = `${i + 1} / span 1`;
                        grid.appendChild(cell);
                }
        return grid;
}

// vGPU: a stacked bar of framebuffer, one block per instance (the VM that holds it).
export function drawVgpu(g: Gpu, types?: VgpuType[]): HTMLElement {
        const total = g.memory_mib ?? 1;
        const insts = g.vgpu?.instances ?? [];
        const users = g.use.filter((u) => u.alloc === 'vgpu' || u.alloc === 'mig-vgpu');
        const barEl = h('div', { class: 'fb' });
        insts.forEach((inst, i) => {
                const u = users[i];
                const w = Math.max(1, (inst.framebuffer_mib / total) * 100);
                const b = h('div', { class: 'inst', title: `${inst.type} (${inst.framebuffer_mib} MiB)` },
                            u ? vmLink(u.vm) : inst.type);
                b.style.width = `${w}%`;
                barEl.appendChild(b);
        });
        const type = insts[0]?.type;
        const max = type ? types?.find((t) => t.name === type)?.max_instances : undefined;
        return h('div', { class: 'vgpu' }, barEl,
                 h('div', { class: 'fits muted' }, insts.length
                         ? `${insts.length}${max ? `/${max}` : ''} × ${type}${g.vgpu?.heterogeneous ? ' (mixed sizes)' : ''}`
                         : 'no vGPU instances: any type fits'));
}

export function drawUse(g: Gpu): HTMLElement {
        if (!g.use.length)
                return h('span', { class: 'muted' }, '—');
        return h('span', null, g.use.map((u, i) => [i ? ' · ' : '',
                u.name ? `${u.name} ` : '', vmLink(u.vm)]));
}

export function drawGpu(g: Gpu, types?: VgpuType[]): HTMLElement {
        if (g.mode === 'mig')
                return drawMig(g);
        if (g.mode === 'vgpu')
                return drawVgpu(g, types);
        if (g.mode === 'passthrough')
                return h('div', { class: 'whole' }, g.use.length
                        ? ['whole GPU → ', g.use.map((u) => vmLink(u.vm))]
                        : h('span', { class: 'muted' }, 'whole GPU, free'));
        return h('div', { class: 'whole muted' }, 'not assigned to a mode');
}

// Where a GPU request would fit now (an estimate from the inventory; the controller's
// placement engine decides and explains a refusal).
export function whereFits(gpus: Gpu[], kind: string, what: string, count = 1,
                          typesOf: (g: Gpu) => VgpuType[] | undefined = () => undefined): string[] {
        const out: string[] = [];
        for (const g of gpus) {
                if (kind === 'mig') {
                        if (g.mode !== 'mig')
                                continue;
                        const at = freePlacements(g, what);
                        if (at.length)
                                out.push(`${g.name} (slice ${at.join(', ')})`);
                } else if (kind === 'vgpu') {
                        if (g.mode !== 'vgpu')
                                continue;
                        const t = typesOf(g)?.find((x) => x.name === what);
                        if (!t)
                                continue;
                        const insts = g.vgpu?.instances ?? [];
                        const same = insts.every((i) => i.type === what);
                        if ((same || g.vgpu?.heterogeneous) && insts.filter((i) => i.type === what).length < t.max_instances)
                                out.push(`${g.name} (${insts.length}/${t.max_instances})`);
                } else if (kind === 'passthrough') {
                        if (!g.use.length && g.mode !== 'mig')
                                out.push(g.name);
                }
        }
        if (kind === 'passthrough') {
                const byHost = new Map<string, number>();
                for (const n of out)
                        byHost.set(n.split('/')[0], (byHost.get(n.split('/')[0]) ?? 0) + 1);
                return [...byHost].filter(([, n]) => n >= count).map(([hst, n]) => `${hst} (${n} free GPUs)`);
        }
        return out;
}
