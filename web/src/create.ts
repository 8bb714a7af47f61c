// SPDX-License-Identifier: MIT
// create.ts — the Create VM dialog: name, size, image, and the GPU as a mode with its profile
// or type, showing where the request would be placed now — the placement engine's own answer
// (POST /api/v1/placements, nothing reserved; the name goes along, ties are broken by it) —
// and where else it would fit as the GPUs are now (from the inventory); a refusal (409
// no-capacity with the engine's explanation) is shown as the API words it. The advisor opens it
// prefilled with an option's GPU request (a VM spec's gpus[0]).
import { ApiError, post } from './api';
import { clear, h } from './dom';
import { migProfiles, whereFits } from './gpu';
import { refresh, state } from './store';
import type { Gpu, Operation } from './types';
import { act, dialog, errorBox } from './ui';
import { vgpuTypes } from './views';

function models(): string[] {
        return [...new Set(state.gpus.map((g) => g.model))].sort();
}

function oneGpuOf(model: string): Gpu | undefined {
        return state.gpus.find((g) => g.model === model);
}

// What the dialog starts with: gpu is a VM spec's gpus[0] ({"kind": "vgpu", "type"},
// {"kind": "mig", "profile"}, {"kind": "passthrough", "count"}); note says where it came from.
export interface CreatePrefill { gpu?: Record<string, unknown>; note?: string }

export function createVmDialog(pre: CreatePrefill = {}): void {
        void refresh('images', 'gpus');
        for (const m of models()) {
                const g = oneGpuOf(m);
                if (g)
                        vgpuTypes(g);
        }
        dialog('Create VM', (body, close) => {
                const name = h('input', { name: 'name', required: true, pattern: '[a-z0-9][a-z0-9._\\-]{0,62}', placeholder: 'infer-2', size: 20, autocomplete: 'off' });
                const vcpus = h('input', { name: 'vcpus', type: 'number', min: 1, max: 512, value: 1, size: 4 });
                const memory = h('input', { name: 'memory_mib', type: 'number', min: 64, step: 64, value: 256, size: 6 });
                const image = h('select', { name: 'image' }, h('option', { value: '' }, 'none (no disk)'),
                                state.images.map((i) => h('option', { value: i.name }, i.name)));
                const kind = h('select', { name: 'gpu-kind' }, [['none', 'no GPU'], ['vgpu', 'vGPU (time-sliced or MIG-backed)'],
                        ['mig', 'MIG instance'], ['passthrough', 'pass-through (whole GPUs)']]
                        .map(([v, l]) => h('option', { value: v }, l)));
                const what = h('select', { name: 'gpu-what' });
                const count = h('input', { name: 'count', type: 'number', min: 1, max: 16, value: 1, size: 3 });
                const whatLabel = h('label', { hidden: true }, h('span', { class: 'wl' }, 'Profile'), ' ', what);
                const countLabel = h('label', { hidden: true }, 'GPUs ', count);
                const host = h('select', { name: 'host' }, h('option', { value: '' }, 'any (placement policy)'),
                               state.hosts.map((x) => h('option', { value: x.name }, `${x.name} (${x.state})`)));
                const fits = h('div', { class: 'fits-box' });
                const err = errorBox();
                const submit = h('button', { type: 'submit', class: 'primary' }, 'Create');
                // The prefilled type or profile, chosen once its option is there (vGPU types
                // arrive asynchronously).
                let want: string | null = null;
                const g0 = pre.gpu;
                if (g0 && ['vgpu', 'mig', 'passthrough'].includes(String(g0.kind))) {
                        kind.value = String(g0.kind);
                        want = g0.kind === 'vgpu' ? String(g0.type ?? '') : g0.kind === 'mig' ? String(g0.profile ?? '') : null;
                        if (g0.kind === 'passthrough' && typeof g0.count === 'number')
                                count.value = String(g0.count);
                }

                const fillWhat = () => {
                        const k = kind.value;
                        const prev = what.value;
                        clear(what);
                        whatLabel.hidden = k !== 'vgpu' && k !== 'mig';
                        countLabel.hidden = k !== 'passthrough';
                        (whatLabel.querySelector('.wl') as HTMLElement).textContent = k === 'mig' ? 'Profile' : 'Type';
                        for (const m of models()) {
                                const group = h('optgroup', { label: m });
                                if (k === 'mig') {
                                        for (const p of migProfiles(m).filter((p) => !p.name.includes('+')))
                                                group.appendChild(h('option', { value: p.name }, p.name));
                                } else if (k === 'vgpu') {
                                        const g = oneGpuOf(m);
                                        for (const t of (g && vgpuTypes(g)) ?? [])
                                                group.appendChild(h('option', { value: t.name },
                                                        `${t.name} (${Math.round(t.framebuffer_mib / 1024)} GiB${t.gi_profile ? `, on MIG ${t.gi_profile}` : ''})`));
                                }
                                if (group.children.length)
                                        what.appendChild(group);
                        }
                        if (want && [...what.options].some((o) => o.value === want)) {
                                what.value = want;
                                want = null;
                        } else if ([...what.options].some((o) => o.value === prev)) {
                                what.value = prev;
                        }
                        showFits();
                };
                const specOf = (): Record<string, unknown> => {
                        const spec: Record<string, unknown> = { vcpus: Number(vcpus.value), memory_mib: Number(memory.value) };
                        if (name.value.trim())
                                spec.name = name.value.trim();
                        if (image.value)
                                spec.image = image.value;
                        if (host.value)
                                spec.host = host.value;
                        if (kind.value === 'vgpu')
                                spec.gpus = [{ kind: 'vgpu', type: what.value }];
                        else if (kind.value === 'mig')
                                spec.gpus = [{ kind: 'mig', profile: what.value }];
                        else if (kind.value === 'passthrough')
                                spec.gpus = [{ kind: 'passthrough', count: Number(count.value) }];
                        return spec;
                };
                // The engine's answer, asked again a moment after the form last changed.
                const engine = h('div', { class: 'engine-box' });
                let asked = 0, askTimer: number | null = null;
                const askEngine = () => {
                        if (askTimer !== null)
                                clearTimeout(askTimer);
                        askTimer = window.setTimeout(async () => {
                                const n = ++asked;
                                const spec = specOf();
                                if (spec.name && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(String(spec.name)))
                                        delete spec.name; // not valid yet: ask without it
                                try {
                                        const p = await post<{ host: string; placement: { gpus: { gpu: string; name: string | null; start?: number }[] } }>(
                                                '/api/v1/placements', spec);
                                        if (n !== asked)
                                                return;
                                        const g = p.placement.gpus.map((x) => `${x.gpu}${x.name ? ` ${x.name}` : ''}${x.start !== undefined ? ` @${x.start}` : ''}`);
                                        engine.replaceChildren(h('b', null, 'Placed now on: '),
                                                h('span', { class: 'engine-answer' }, g.length ? g.join(', ') : p.host),
                                                h('span', { class: 'muted' }, ' (the placement engine; nothing reserved)'));
                                } catch (e) {
                                        if (n !== asked)
                                                return;
                                        engine.replaceChildren(h('b', null, 'Placed now: '),
                                                h('span', { class: 'warn engine-refusal' }, e instanceof ApiError || e instanceof Error ? e.message : String(e)));
                                }
                        }, 150);
                };
                const showFits = () => {
                        askEngine();
                        clear(fits);
                        const k = kind.value;
                        if (k === 'none') {
                                fits.append(h('span', { class: 'muted' }, 'No GPU: any host with the vCPUs and memory.'));
                                return;
                        }
                        const gpus = state.gpus.filter((g) => !host.value || g.host === host.value)
                                .filter((g) => state.hosts.find((x) => x.name === g.host)?.state === 'up');
                        const where = whereFits(gpus, k, what.value, Number(count.value) || 1, vgpuTypes);
                        fits.append(h('b', null, 'Would fit now: '), where.length
                                ? h('span', { class: 'fit-list' }, where.slice(0, 12).join(' · '), where.length > 12 ? ` … (${where.length})` : '')
                                : h('span', { class: 'warn' }, 'nowhere as the GPUs are now (modes, free slices); the controller may still place it by changing a free GPU\'s mode, and says why not if it cannot.'));
                };
                kind.addEventListener('change', fillWhat);
                what.addEventListener('change', showFits);
                count.addEventListener('input', showFits);
                host.addEventListener('change', showFits);
                // vGPU types arrive asynchronously
                let polls = 0;
                const poll = window.setInterval(() => {
                        if (++polls > 30)
                                want = null; // not a type of these GPUs: leave the choice to the user
                        if (kind.value === 'vgpu' && (!what.options.length || want))
                                fillWhat();
                }, 300);

                const form = h('form', null,
                        pre.note ? h('p', { class: 'muted prefill-note' }, pre.note) : '',
                        h('div', { class: 'row' }, h('label', null, 'Name ', name), h('label', null, 'vCPUs ', vcpus),
                          h('label', null, 'Memory (MiB) ', memory), h('label', null, 'Image ', image)),
                        h('div', { class: 'row' }, h('label', null, 'GPU ', kind), whatLabel, countLabel, h('label', null, 'Host ', host)),
                        engine, fits, err.el, h('div', { class: 'buttons' }, submit));
                for (const el of [name, vcpus, memory, image])
                        el.addEventListener('change', askEngine);
                form.addEventListener('submit', async (ev) => {
                        ev.preventDefault();
                        err.clear();
                        const spec: Record<string, unknown> = { name: name.value.trim(), vcpus: Number(vcpus.value),
                                                                memory_mib: Number(memory.value) };
                        Object.assign(spec, specOf());
                        submit.disabled = true;
                        try {
                                const op = await act(`create ${spec.name}`, () => post<Operation>('/api/v1/vms', spec), true);
                                close();
                                if (op)
                                        location.hash = `#/vms/${encodeURIComponent(String(spec.name))}`;
                        } catch (e) {
                                err.show(e);
                        } finally {
                                submit.disabled = false;
                        }
                });
                body.appendChild(form);
                body.closest('dialog')?.addEventListener('close', () => clearInterval(poll));
                fillWhat();
                name.focus();
        }, 'wide');
}
