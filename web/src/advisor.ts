// SPDX-License-Identifier: MIT
// advisor.ts — the Advisor page (#/advisor; docs/advisor.md): a workload's traits (kind, GPU
// memory, isolation, live migration, latency SLA, users or replicas) sent to
// POST /api/v1/advise, and the ranked options it answers — each a mode and profile on a GPU
// model, where it fits in the cluster now (the placement engine's answer, nothing reserved),
// its yearly licence cost and the reasons in the trade-off table's words — with the options
// ruled out, and the rule that ruled each out, collapsed below. "Create VM…" on an option opens
// the Create VM dialog with that option's GPU request. A refusal (400 naming the trait) is
// shown as the API words it.
import { ApiError, post } from './api';
import { createVmDialog } from './create';
import { h, mib, money } from './dom';
import type { AdviseLicense, AdviseOption, Advice } from './types';
import { errorBox } from './ui';
import { table, type View } from './views';

const KINDS = ['training', 'inference', 'vdi', 'development', 'simulation'];

// The traits as last asked, kept while the dashboard is open.
let last: { traits: Record<string, unknown>; advice: Advice } | null = null;

function cost(l: AdviseLicense): HTMLElement {
        if (!l.edition)
                return h('span', { class: 'muted' }, 'no licence');
        const what = `${l.seats} seat${l.seats === 1 ? '' : 's'} of ${l.edition}${l.counting === 'gpu' ? ' (per GPU)' : ''}`;
        return h('div', null,
                l.cost_per_year !== null && l.price_per_seat_year !== null
                        ? h('b', { class: 'yearly' }, `${money(l.cost_per_year, l.currency)}/yr`)
                        : h('span', { class: 'muted' }, 'no price'),
                h('div', { class: 'muted small' }, what), l.note ? h('div', { class: 'muted small' }, l.note) : '');
}

function whatOf(o: AdviseOption): string {
        if (o.mode === 'passthrough')
                return 'whole GPU';
        if (o.mode === 'mig')
                return `${o.profile}${o.vgpu_type ? ` (as ${o.vgpu_type})` : ''}`;
        return o.vgpu_type ?? o.profile ?? '—';
}

// The option's GPU request: the API's own when it gives one, else built from the option.
function requestOf(o: AdviseOption): Record<string, unknown> {
        if (o.request)
                return o.request;
        if (o.mode === 'passthrough')
                return { kind: 'passthrough', count: 1 };
        if (o.mode === 'mig')
                return { kind: 'mig', profile: o.profile };
        return { kind: 'vgpu', type: o.vgpu_type ?? o.profile };
}

function optionsTable(a: Advice): HTMLElement {
        const t = table(['#', 'Mode', 'Model', 'Profile', 'Instances', 'Where it fits now', 'Licence per year', 'Why', ''], 'options');
        for (const o of a.options) {
                const fits = o.where?.fits ?? o.fit !== 'no-room';
                t.body.appendChild(h('tr', { 'data-option': String(o.rank), 'data-mode': o.mode, 'data-request': JSON.stringify(requestOf(o)),
                                             class: fits ? null : 'nofit' },
                        h('td', { class: 'num strong' }, String(o.rank)),
                        h('td', null, h('span', { class: `mode m-${o.mode === 'passthrough' ? 'passthrough' : o.mode}` }, o.mode)),
                        h('td', null, o.model),
                        h('td', { class: 'mono' }, whatOf(o), o.memory_mib ? h('div', { class: 'muted small' }, mib(o.memory_mib)) : ''),
                        h('td', { class: 'num' }, String(o.instances),
                          h('div', { class: 'muted small' }, `${o.gpus} GPU${o.gpus === 1 ? '' : 's'}${o.per_gpu ? `, ${o.per_gpu}/GPU` : ''}`)),
                        h('td', { class: 'where' }, o.where
                                ? h('span', { class: fits ? 'fit-yes' : 'warn' }, o.where.text)
                                : h('span', { class: 'muted' }, 'not asked')),
                        h('td', { class: 'licence' }, cost(o.license),
                          o.as_vgpu?.edition ? h('div', { class: 'muted small' }, 'as MIG-backed vGPU: ',
                                  o.as_vgpu.cost_per_year !== null ? `${money(o.as_vgpu.cost_per_year, o.as_vgpu.currency)}/yr` : 'no price',
                                  ` (${o.as_vgpu.seats} × ${o.as_vgpu.edition}) where a pool counts it`) : ''),
                        h('td', { class: 'reasons' }, h('ul', null, o.reasons.map((r) => h('li', null, r)))),
                        h('td', null, h('button', { type: 'button', class: 'small', 'data-action': 'create-from-option', onclick: () =>
                                createVmDialog({ gpu: requestOf(o), note: `From the advisor: option ${o.rank}, ${o.mode} ${whatOf(o)} on ${o.model}` +
                                        `${o.instances > 1 ? ` (${o.instances} instances: one VM each)` : ''}; ${o.where?.text ?? ''}` }) },
                                'Create VM…'))));
        }
        return t.el;
}

function excludedList(a: Advice): HTMLElement {
        const t = table(['Mode', 'Model', 'Rule', 'Why', 'Source']);
        for (const x of a.excluded)
                t.body.appendChild(h('tr', { 'data-excluded': x.rule },
                        h('td', null, x.mode), h('td', null, x.model ?? 'every model'), h('td', { class: 'mono' }, x.rule),
                        h('td', null, x.reason), h('td', { class: 'muted' }, x.source ?? '')));
        return h('details', { class: 'excluded' }, h('summary', null, `Ruled out (${a.excluded.length})`), t.el);
}

export function advisorPage(): View {
        const kind = h('select', { name: 'kind' }, KINDS.map((k) => h('option', { value: k }, k)));
        const memory = h('input', { name: 'gpu_memory_mib', type: 'number', value: 20480, size: 8 });
        const isolation = h('select', { name: 'isolation' }, ['none', 'software', 'hardware'].map((x) => h('option', { value: x }, x)));
        const live = h('input', { name: 'live_migration', type: 'checkbox' });
        const latency = h('select', { name: 'latency_sla' }, ['best-effort', 'strict'].map((x) => h('option', { value: x }, x)));
        const users = h('input', { name: 'users', type: 'number', value: 1, size: 5 });
        const err = errorBox();
        const out = h('div', { class: 'advice' });
        const submit = h('button', { type: 'submit', class: 'primary' }, 'Advise');
        const traits = (): Record<string, unknown> => {
                const num = (v: string) => (v.trim() === '' ? null : Number(v));
                return { kind: kind.value, gpu_memory_mib: num(memory.value), isolation: isolation.value,
                         live_migration: live.checked, latency_sla: latency.value, users: num(users.value) };
        };
        const show = (a: Advice) => {
                out.replaceChildren(
                        h('h2', null, `Options (${a.options.length})`),
                        a.options.length ? optionsTable(a) : h('p', { class: 'warn none' }, a.none ?? 'No option.'),
                        a.excluded.length ? excludedList(a) : '');
        };
        // novalidate: the controller checks the traits and names the one that is wrong.
        const form = h('form', { class: 'traits', novalidate: true },
                h('div', { class: 'row' }, h('label', null, 'Workload ', kind), h('label', null, 'GPU memory (MiB) ', memory),
                  h('label', null, 'Users or replicas ', users)),
                h('div', { class: 'row' }, h('label', null, 'Isolation ', isolation), h('label', null, 'Latency SLA ', latency),
                  h('label', null, live, ' needs live migration'), submit),
                err.el);
        form.addEventListener('submit', async (ev) => {
                ev.preventDefault();
                err.clear();
                const t = traits();
                submit.disabled = true;
                try {
                        const a = await post<Advice>('/api/v1/advise', t);
                        last = { traits: t, advice: a };
                        show(a);
                } catch (e) {
                        err.show(e instanceof ApiError || e instanceof Error ? e.message : String(e));
                        out.replaceChildren();
                } finally {
                        submit.disabled = false;
                }
        });
        if (last) {
                const t = last.traits;
                kind.value = String(t.kind);
                memory.value = t.gpu_memory_mib === null ? '' : String(t.gpu_memory_mib);
                isolation.value = String(t.isolation);
                live.checked = Boolean(t.live_migration);
                latency.value = String(t.latency_sla);
                users.value = t.users === null ? '' : String(t.users);
                show(last.advice);
        }
        const el = h('section', null,
                h('div', { class: 'pagehead' }, h('h1', null, 'Mode advisor')),
                h('p', { class: 'muted' }, 'Describe the workload: the advisor ranks pass-through, vGPU and MIG on this cluster\'s GPU models ',
                  'by the trade-off table, says where each would fit now (nothing is reserved) and what its licence seats cost a year.'),
                form, out);
        return { el, update() { /* the answer stays as asked; Advise asks again */ } };
}
