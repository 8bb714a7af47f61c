// SPDX-License-Identifier: MIT
// views.ts — the pages: overview (hosts with CPU, memory and GPU use), a host (its GPUs drawn,
// who uses what, drain, GPU modes), VMs (a dense list), a VM (CPU, memory and GPU charts side
// by side, actions, migrate), operations (with progress). Each page builds its frame once and
// redraws its tables on every change of the store, so charts keep their state.
import { displayConsole, serialConsole } from './consoles';
import { enc, get, post, del } from './api';
import { chart, PALETTE, type Chart, type Line } from './charts';
import { ago, bar, clear, h, mib, pct } from './dom';
import { drawGpu, drawUse } from './gpu';
import { migLayoutDialog } from './mig-layout';
import { hold, metrics, watch, type Series } from './metrics';
import { hostGpus, hostVms, state, vmByName } from './store';
import type { ClusterEvent, Gpu, Host, Operation, VgpuType, Vm } from './types';
import { act, dialog, errorBox } from './ui';

// Views that keep data of their own (licences, insights) read it again on onEvent (an event from
// the stream) and reload (the stream is back after a drop).
export interface View {
        el: HTMLElement; update(): void; destroy?(): void;
        onEvent?(ev: ClusterEvent): void; reload?(): void;
}

const MODES = ['none', 'passthrough', 'vgpu', 'mig'];

// vGPU types per GPU model, fetched once from one GPU of that model.
const typesByModel = new Map<string, VgpuType[] | Promise<void>>();
export function vgpuTypes(g: Gpu): VgpuType[] | undefined {
        const t = typesByModel.get(g.model);
        if (Array.isArray(t))
                return t;
        if (!t)
                typesByModel.set(g.model, get<VgpuType[]>(`/api/v1/hosts/${enc(g.host)}/gpus/${g.index}/vgpu-types`)
                        .then((x) => { typesByModel.set(g.model, x); })
                        .catch(() => { typesByModel.delete(g.model); }));
        return undefined;
}

export const stateBadge = (s: string) => h('span', { class: `badge st-${s}` }, s);
export const hostLink = (n: string | null) => n ? h('a', { href: `#/hosts/${enc(n)}` }, n) : h('span', { class: 'muted' }, '—');
export const vmLink = (n: string) => h('a', { href: `#/vms/${enc(n)}` }, n);

function gpuRequest(v: Vm): string {
        const g = v.spec.gpus?.[0] as Record<string, unknown> | undefined;
        if (!g)
                return '—';
        switch (g.kind) {
        case 'passthrough': return `passthrough:${g.count ?? 1}`;
        case 'vgpu': return `vgpu:${g.type}`;
        case 'mig': return `mig:${g.profile}`;
        case 'need': return `need:${mib(g.memory_mib as number)}`;
        default: return String(g.kind);
        }
}

function reserved(host: string): { cpus: number; mem: number; n: number } {
        let cpus = 0, mem = 0, n = 0;
        for (const v of hostVms(host)) {
                if (v.state === 'failed')
                        continue;
                cpus += v.spec.vcpus ?? 0;
                mem += v.spec.memory_mib ?? 0;
                n++;
        }
        return { cpus, mem, n };
}

function gpuChips(gpus: Gpu[]): HTMLElement {
        return h('span', { class: 'chips' }, gpus.map((g) => {
                const c = h('a', { class: `chip m-${g.mode}${g.use.length ? ' used' : ''}`, href: `#/hosts/${enc(g.host)}`,
                                   title: `${g.name} ${g.model}: ${g.mode}, ${g.use.length ? `used by ${g.use.map((u) => u.vm).join(', ')}` : 'free'}, util ${pct(g.util_pct)}` });
                const f = h('span', { class: 'fill' });
                f.style.height = `${g.util_pct ?? 0}%`;
                c.appendChild(f);
                return c;
        }));
}

// A chart fed by one entity's history; why says what is missing when it draws nothing.
function historyCharts(series: string, charts: { c: Chart; lines: (s: Series) => Line[]; why?: (s: Series) => string }[]):
        { update(extraWhy?: string): void; stop(): void } {
        let last: Series | null = null;
        let lastWhy = 'loading…';
        let extra = '';
        const draw = () => {
                for (const x of charts) {
                        const why = extra || (last ? (x.why?.(last) || 'no samples yet') : lastWhy);
                        x.c.update(last, last ? x.lines(last) : [], why);
                }
        };
        const stop = watch(series, '15m', (s, why) => {
                last = s;
                lastWhy = why;
                draw();
        });
        return {
                update(extraWhy = '') {
                        if (extraWhy !== extra) {
                                extra = extraWhy;
                                draw();
                        }
                },
                stop() {
                        stop();
                        for (const x of charts)
                                x.c.destroy();
                },
        };
}

// The per-slot GPU columns of a VM's history ("gpu0_util_pct", ...), one line each.
function slotLines(s: Series, metric: string): Line[] {
        return Object.keys(s.cols).filter((c) => new RegExp(`^gpu\\d+_${metric}$`).test(c)).map((c, i) => {
                const slot = Number(/^gpu(\d+)_/.exec(c)![1]);
                const g = s.gpus.find((x) => x.slot === slot);
                return { col: c, label: `GPU ${slot}${g?.profile ? ` ${g.profile}` : g?.mode ? ` ${g.mode}` : ''}`,
                         color: PALETTE[i % PALETTE.length], fill: i === 0 };
        });
}

export function table(head: string[], cls = ''): { el: HTMLTableElement; body: HTMLTableSectionElement } {
        const body = h('tbody');
        const el = h('table', { class: `grid ${cls}` }, h('thead', null, h('tr', null, head.map((x) => h('th', null, x)))), body);
        return { el, body };
}

// ---------------------------------------------------------------- overview

export function overview(): View {
        const summary = h('div', { class: 'summary' });
        const hosts = table(['Host', 'State', 'Accel', 'vCPUs reserved', 'Memory reserved', 'GPUs', 'GPU util', 'Host CPU', 'VMs']);
        const gpus = table(['GPU', 'Model', 'Mode', 'Used by', 'Util', 'Memory']);
        const err = h('div', { class: 'err', hidden: true });
        const el = h('section', null, err, summary, h('h2', null, 'Hosts'), hosts.el, h('h2', null, 'GPUs'), gpus.el);
        const release = hold();
        return {
                el,
                destroy: release,
                update() {
                        err.hidden = !state.error;
                        err.textContent = state.error ?? '';
                        const up = state.hosts.filter((x) => x.state === 'up').length;
                        const modes: Record<string, number> = {};
                        for (const g of state.gpus)
                                modes[g.mode] = (modes[g.mode] ?? 0) + 1;
                        const used = state.gpus.filter((g) => g.use.length).length;
                        const vmStates: Record<string, number> = {};
                        for (const v of state.vms)
                                vmStates[v.state] = (vmStates[v.state] ?? 0) + 1;
                        const running = state.ops.filter((o) => o.state === 'running' || o.state === 'pending').length;
                        clear(summary);
                        const card = (title: string, big: string | number, small: string) =>
                                h('div', { class: 'card' }, h('div', { class: 'k' }, title), h('div', { class: 'v' }, String(big)),
                                  h('div', { class: 'muted' }, small));
                        summary.append(
                                card('Hosts', state.hosts.length, `${up} up${state.hosts.length - up ? ` · ${state.hosts.length - up} not` : ''}`),
                                card('GPUs', state.gpus.length, `${used} in use · ${Object.entries(modes).map(([m, n]) => `${n} ${m}`).join(' · ')}`),
                                card('VMs', state.vms.length, Object.entries(vmStates).map(([s, n]) => `${n} ${s}`).join(' · ') || 'none'),
                                card('Operations', running, 'running now'));
                        clear(hosts.body);
                        for (const x of state.hosts) {
                                const gpus = hostGpus(x.name);
                                const r = reserved(x.name);
                                const visible = gpus.filter((g) => g.util_pct !== null);
                                const util = visible.length ? visible.reduce((s, g) => s + (g.util_pct ?? 0), 0) / visible.length : null;
                                const hcpu = metrics.hosts.get(x.name)?.cpu ?? null;
                                hosts.body.appendChild(h('tr', { 'data-host': x.name },
                                        h('td', null, h('a', { href: `#/hosts/${enc(x.name)}`, class: 'strong' }, x.name)),
                                        h('td', null, stateBadge(x.state)),
                                        h('td', { title: x.accel_reason ?? '' }, x.accel ?? '—'),
                                        h('td', null, bar(r.cpus, x.cpus ?? null, `${r.cpus}/${x.cpus ?? '?'}`)),
                                        h('td', null, bar(r.mem, x.memory_mib ?? null, `${mib(r.mem)} / ${mib(x.memory_mib)}`)),
                                        h('td', null, gpuChips(gpus), ' ', h('span', { class: 'muted' },
                                                Object.entries(x.models ?? {}).map(([m, n]) => `${n}× ${m}`).join(', '))),
                                        h('td', null, bar(util, 100, `${pct(util)}${visible.length < gpus.length ? ` (${visible.length}/${gpus.length} visible)` : ''}`)),
                                        h('td', null, hcpu !== null ? bar(hcpu, 100, pct(hcpu)) : h('span', { class: 'muted', title: metrics.why }, '—')),
                                        h('td', { class: 'num' }, String(r.n))));
                        }
                        clear(gpus.body);
                        for (const g of state.gpus)
                                gpus.body.appendChild(h('tr', { 'data-gpu': g.name },
                                        h('td', null, h('a', { href: `#/hosts/${enc(g.host)}`, class: 'strong' }, g.name)),
                                        h('td', null, g.model), h('td', null, h('span', { class: `mode m-${g.mode}` }, g.mode)),
                                        h('td', null, drawUse(g)),
                                        h('td', null, g.util_pct === null ? h('span', { class: 'muted' }, 'n/a (in guest)') : bar(g.util_pct, 100, pct(g.util_pct))),
                                        h('td', null, g.memory_used_mib === null ? h('span', { class: 'muted' }, 'n/a') : bar(g.memory_used_mib, g.memory_mib, `${mib(g.memory_used_mib)} / ${mib(g.memory_mib)}`))));
                        if (!state.hosts.length)
                                hosts.body.appendChild(h('tr', null, h('td', { colspan: 9, class: 'muted' },
                                        state.loaded.has('hosts') ? 'No hosts have registered yet.' : 'Loading…')));
                },
        };
}

// ---------------------------------------------------------------- a host

function setModeDialog(g: Gpu): void {
        dialog(`Set the mode of ${g.name}`, (body, close) => {
                const sel = h('select', { name: 'mode' }, MODES.map((m) => h('option', { value: m, selected: m === g.mode }, m)));
                const err = errorBox();
                const form = h('form', null,
                        h('p', { class: 'muted' }, `${g.model} at ${g.pci}, now ${g.mode}. A GPU in use cannot change mode (the API names the VM).`),
                        h('label', null, 'Mode ', sel), err.el,
                        h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Set mode')));
                form.addEventListener('submit', async (ev) => {
                        ev.preventDefault();
                        err.clear();
                        try {
                                await act(`${g.name} → ${sel.value}`, () =>
                                        post(`/api/v1/hosts/${enc(g.host)}/gpus/${g.index}/mode`, { mode: sel.value }), true);
                                close();
                        } catch (e) {
                                err.show(e);
                        }
                });
                body.appendChild(form);
        });
}

function drainDialog(host: Host): void {
        dialog(`Drain ${host.name}`, (body, close) => {
                const plan = h('div', null, h('p', { class: 'muted' }, 'Asking the controller for the plan…'));
                const pt = h('select', { name: 'passthrough' }, ['offline', 'stop', 'keep'].map((m) => h('option', { value: m }, m)));
                const err = errorBox();
                const go = h('button', { type: 'submit', class: 'primary danger' }, 'Drain');
                const form = h('form', null,
                        h('p', null, 'The host goes into maintenance (no new placements); its vGPU and MIG VMs move live, pass-through ones by the policy below.'),
                        plan, h('label', null, 'Pass-through VMs ', pt), err.el, h('div', { class: 'buttons' }, go));
                const loadPlan = async () => {
                        try {
                                const ans = await post<{ plan: { vm: string; action: string; why: string }[] }>(
                                        `/api/v1/hosts/${enc(host.name)}/drain`, { dry_run: true, passthrough: pt.value });
                                clear(plan);
                                const t = table(['VM', 'Action', 'Why']);
                                for (const p of ans.plan ?? [])
                                        t.body.appendChild(h('tr', null, h('td', null, vmLink(p.vm)), h('td', null, p.action), h('td', null, p.why)));
                                plan.appendChild(ans.plan?.length ? t.el : h('p', { class: 'muted' }, 'No VMs to move.'));
                        } catch (e) {
                                clear(plan);
                                err.show(e);
                        }
                };
                pt.addEventListener('change', () => { err.clear(); void loadPlan(); });
                void loadPlan();
                form.addEventListener('submit', async (ev) => {
                        ev.preventDefault();
                        err.clear();
                        try {
                                await act(`drain ${host.name}`, () => post(`/api/v1/hosts/${enc(host.name)}/drain`, { passthrough: pt.value }), true);
                                close();
                        } catch (e) {
                                err.show(e);
                        }
                });
                body.appendChild(form);
        });
}

export function hostPage(name: string): View {
        const head = h('div', { class: 'pagehead' });
        const facts = h('div', { class: 'facts' });
        const charts = h('div', { class: 'charts' });
        const cpu = chart('Host CPU', '%', 100);
        const mem = chart('Host memory', 'MiB');
        charts.append(cpu.el, mem.el);
        const hist = historyCharts(`host/${name}`, [
                { c: cpu, lines: () => [{ col: 'cpu_util_pct', label: 'busy', color: '#5b9bff', fill: true }] },
                { c: mem, lines: () => [{ col: 'memory_used_mib', label: 'used', color: '#b07cff', fill: true }] }]);
        const gpus = table(['GPU', 'PCI', 'Model', 'Mode', 'Slices / framebuffer', 'Used by', 'Util', 'Memory', '']);
        const vms = table(['VM', 'State', 'GPUs', 'vCPUs', 'Memory']);
        const el = h('section', null, head, facts, charts, h('h2', null, 'GPUs'), gpus.el, h('h2', null, 'VMs on this host'), vms.el);
        const release = hold();
        return {
                el,
                destroy() { release(); hist.stop(); },
                update() {
                        const x = state.hosts.find((y) => y.name === name);
                        clear(head);
                        if (!x) {
                                head.append(h('h1', null, name), h('p', { class: 'err' }, state.loaded.has('hosts') ? `There is no host '${name}'.` : 'Loading…'));
                                return;
                        }
                        head.append(h('h1', null, x.name, ' ', stateBadge(x.state)),
                                h('span', { class: 'spacer' }),
                                x.state === 'maintenance'
                                        ? h('button', { type: 'button', onclick: () => void act(`undrain ${x.name}`, () => post(`/api/v1/hosts/${enc(x.name)}/undrain`)) }, 'Undrain')
                                        : h('button', { type: 'button', class: 'danger', onclick: () => drainDialog(x) }, 'Drain…'));
                        clear(facts);
                        const r = reserved(x.name);
                        const fact = (k: string, v: Node | string) => h('div', null, h('span', { class: 'k' }, k), ' ', v);
                        facts.append(fact('accel', x.accel ?? '—'), fact('vCPUs', `${r.cpus} reserved of ${x.cpus ?? '?'}`),
                                fact('memory', `${mib(r.mem)} reserved of ${mib(x.memory_mib)}`),
                                fact('endpoint', x.endpoint ?? '—'), fact('last seen', ago(x.last_seen)),
                                fact('models', Object.entries(x.models ?? {}).map(([m, n]) => `${n}× ${m}`).join(', ') || '—'),
                                x.simulated ? fact('simulated', 'yes') : '');
                        clear(gpus.body);
                        for (const g of hostGpus(x.name))
                                gpus.body.appendChild(h('tr', { 'data-gpu': g.name },
                                        h('td', { class: 'strong' }, String(g.index)), h('td', { class: 'mono' }, g.pci), h('td', null, g.model),
                                        h('td', null, h('span', { class: `mode m-${g.mode}` }, g.mode)),
                                        h('td', { class: 'draw' }, drawGpu(g, vgpuTypes(g))),
                                        h('td', null, drawUse(g)),
                                        h('td', null, g.util_pct === null ? h('span', { class: 'muted', title: 'a pass-through GPU is not visible to the host driver' }, 'n/a (in guest)') : bar(g.util_pct, 100, pct(g.util_pct))),
                                        h('td', null, g.memory_used_mib === null ? h('span', { class: 'muted' }, 'n/a') : bar(g.memory_used_mib, g.memory_mib, `${mib(g.memory_used_mib)} / ${mib(g.memory_mib)}`)),
                                        h('td', null, h('button', { type: 'button', class: 'small', onclick: () => setModeDialog(g) }, 'Mode…'),
                                          g.mig?.capable ? h('button', { type: 'button', class: 'small', 'data-action': 'mig-layout',
                                                                         onclick: () => migLayoutDialog(g) }, 'MIG layout…') : '')));
                        clear(vms.body);
                        for (const v of hostVms(x.name))
                                vms.body.appendChild(h('tr', null, h('td', null, vmLink(v.name)), h('td', null, stateBadge(v.state)),
                                        h('td', null, (v.placement?.gpus ?? []).map((p) => `${p.gpu}${p.name ? ` ${p.name}` : ''}`).join(', ') || '—'),
                                        h('td', { class: 'num' }, String(v.spec.vcpus ?? '—')), h('td', { class: 'num' }, mib(v.spec.memory_mib))));
                        if (!hostVms(x.name).length)
                                vms.body.appendChild(h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'none')));
                },
        };
}

// ---------------------------------------------------------------- VMs

function vmActions(v: Vm, small = true): HTMLElement {
        const cls = small ? 'small' : '';
        const b = (label: string, fn: () => void, extra = '') => h('button', { type: 'button', class: `${cls} ${extra}`, onclick: fn, 'data-action': label.toLowerCase() }, label);
        const stopped = v.state === 'stopped' || v.state === 'crashed';
        return h('span', { class: 'actions' },
                stopped ? b('Start', () => void act(`start ${v.name}`, () => post(`/api/v1/vms/${enc(v.name)}/start`))) : '',
                v.state === 'running' ? b('Stop', () => void act(`stop ${v.name}`, () => post(`/api/v1/vms/${enc(v.name)}/stop`))) : '',
                v.state === 'running' || stopped ? b('Migrate…', () => migrateDialog(v)) : '',
                b('Delete', () => {
                        if (confirm(`Delete ${v.name}? Its disk goes with it.`))
                                void act(`delete ${v.name}`, () => del(`/api/v1/vms/${enc(v.name)}`));
                }, 'danger'));
}

function migrateDialog(v: Vm): void {
        dialog(`Migrate ${v.name}`, (body, close) => {
                const targets = state.hosts.filter((x) => x.name !== v.host);
                const to = h('select', { name: 'to' }, h('option', { value: '' }, 'any (the controller picks)'),
                             targets.map((x) => h('option', { value: x.name, disabled: x.state !== 'up' }, `${x.name} (${x.state})`)));
                if (targets.filter((x) => x.state === 'up').length === 1)
                        to.value = targets.find((x) => x.state === 'up')!.name;
                const passthrough = v.placement?.gpus.some((g) => g.alloc === 'whole');
                const mode = h('select', { name: 'mode' }, h('option', { value: 'live', selected: !passthrough }, 'live'),
                               h('option', { value: 'offline', selected: !!passthrough }, 'offline (stop, move, start)'));
                const err = errorBox();
                const form = h('form', null,
                        h('p', { class: 'muted' }, `Now on ${v.host ?? '—'}. `, passthrough ? 'Its pass-through GPU cannot move live.' : 'Live: the VM runs while its memory moves.'),
                        h('label', null, 'To ', to), h('label', null, 'Mode ', mode), err.el,
                        h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Migrate')));
                form.addEventListener('submit', async (ev) => {
                        ev.preventDefault();
                        err.clear();
                        const req: Record<string, string> = { mode: mode.value };
                        if (to.value)
                                req.to = to.value;
                        try {
                                await act(`migrate ${v.name}${to.value ? ` → ${to.value}` : ''}`, () => post(`/api/v1/vms/${enc(v.name)}/migrate`, req), true);
                                close();
                        } catch (e) {
                                err.show(e);
                        }
                });
                body.appendChild(form);
        });
}

export function vmsPage(): View {
        const t = table(['VM', 'State', 'Host', 'GPU request', 'GPUs', 'vCPUs', 'Memory', 'CPU', 'GPU', '']);
        const filter = h('input', { type: 'search', placeholder: 'filter by name, host, state…', class: 'filter' });
        const el = h('section', null, h('div', { class: 'pagehead' }, h('h1', null, 'VMs'), h('span', { class: 'spacer' }), filter), t.el);
        const release = hold();
        const view: View = {
                el,
                destroy: release,
                update() {
                        clear(t.body);
                        const f = filter.value.trim().toLowerCase();
                        const list = [...state.vms].sort((a, b) => a.name.localeCompare(b.name))
                                .filter((v) => !f || `${v.name} ${v.host} ${v.state} ${gpuRequest(v)}`.toLowerCase().includes(f));
                        for (const v of list) {
                                const m = metrics.vms.get(v.name);
                                t.body.appendChild(h('tr', { 'data-vm': v.name },
                                        h('td', null, h('a', { href: `#/vms/${enc(v.name)}`, class: 'strong' }, v.name)),
                                        h('td', null, stateBadge(v.state), v.migration ? h('span', { class: 'muted' }, ` → ${v.migration.host}`) : ''),
                                        h('td', { class: 'host' }, hostLink(v.host)), h('td', { class: 'mono' }, gpuRequest(v)),
                                        h('td', null, (v.placement?.gpus ?? []).map((p) => p.gpu).join(', ') || '—'),
                                        h('td', { class: 'num' }, String(v.spec.vcpus ?? '—')), h('td', { class: 'num' }, mib(v.spec.memory_mib)),
                                        h('td', { class: 'num' }, pct(m?.cpu)),
                                        h('td', { class: 'num', title: m?.gpuWhy ?? '' }, m?.gpuUtil === null && m?.gpuWhy ? 'n/a' : pct(m?.gpuUtil)),
                                        h('td', null, vmActions(v))));
                        }
                        if (!list.length)
                                t.body.appendChild(h('tr', null, h('td', { colspan: 10, class: 'muted' },
                                        state.vms.length ? 'No VM matches.' : state.loaded.has('vms') ? 'No VMs yet: Create VM makes one.' : 'Loading…')));
                },
        };
        filter.addEventListener('input', () => view.update());
        return view;
}

export function vmPage(name: string): View {
        const head = h('div', { class: 'pagehead' });
        const facts = h('div', { class: 'facts' });
        const charts = h('div', { class: 'charts' });
        const cpu = chart('CPU', '%');
        const mem = chart('Memory', 'MiB');
        const gpu = chart('GPU', '%', 100);
        const gmem = chart('GPU memory', 'MiB');
        charts.append(cpu.el, mem.el, gpu.el, gmem.el);
        const noGpuWhy = (s: Series, metric: string) => !s.gpus.length && !slotLines(s, metric).length ? 'this VM has no GPU'
                : metrics.vms.get(name)?.gpuWhy ?? 'no samples yet';
        const hist = historyCharts(`vm/${name}`, [
                { c: cpu, lines: () => [{ col: 'cpu_util_pct', label: 'QEMU (% of one core)', color: '#5b9bff', fill: true }] },
                { c: mem, lines: () => [{ col: 'rss_mib', label: 'RSS', color: '#b07cff', fill: true }] },
                { c: gpu, lines: (s) => slotLines(s, 'util_pct'), why: (s) => noGpuWhy(s, 'util_pct') },
                { c: gmem, lines: (s) => slotLines(s, 'memory_used_mib'), why: (s) => noGpuWhy(s, 'memory_used_mib') }]);
        const gpus = table(['GPU', 'Alloc', 'Profile / type', 'Slice', 'PCI']);
        const ops = table(['Operation', 'State', 'Progress', 'Updated']);
        const overviewPanel = h('div', { 'data-panel': 'overview' }, facts, charts, h('h2', null, 'GPUs'), gpus.el,
                                h('h2', null, 'Recent operations'), ops.el);
        // Consoles (consoles.ts): a socket only while its tab shows.
        const serial = serialConsole(name);
        const display = displayConsole(name);
        const panels: Record<string, { el: HTMLElement; open?(): void; close?(): void }> = {
                overview: { el: overviewPanel }, console: serial, display };
        const tabs = h('div', { class: 'tabs', role: 'tablist' });
        let shown = 'overview';
        const show = (which: string) => {
                if (which !== shown)
                        panels[shown].close?.();
                for (const [k, p] of Object.entries(panels))
                        p.el.hidden = k !== which;
                for (const b of tabs.querySelectorAll('button'))
                        b.setAttribute('aria-selected', String(b.dataset.tab === which));
                if (which !== shown)
                        panels[which].open?.();
                shown = which;
        };
        for (const [k, label] of [['overview', 'Overview'], ['console', 'Console'], ['display', 'Display']])
                tabs.appendChild(h('button', { type: 'button', role: 'tab', 'data-tab': k, onclick: () => show(k) }, label));
        show('overview');
        const el = h('section', null, head, tabs, overviewPanel, serial.el, display.el);
        const release = hold();
        return {
                el,
                destroy() { release(); hist.stop(); serial.close(); display.close(); },
                update() {
                        const v = vmByName(name);
                        clear(head);
                        if (!v) {
                                head.append(h('h1', null, name), h('p', { class: 'err' }, state.loaded.has('vms') ? `There is no VM '${name}' (deleted?).` : 'Loading…'));
                                return;
                        }
                        head.append(h('h1', null, v.name, ' ', stateBadge(v.state), ' ', h('span', { class: 'on' }, 'on '), h('span', { class: 'vm-host' }, hostLink(v.host))),
                                v.migration ? h('span', { class: 'badge st-starting' }, `moving to ${v.migration.host} (${v.migration.mode}, ${v.migration.state})`) : '',
                                h('span', { class: 'spacer' }), vmActions(v, false));
                        clear(facts);
                        const fact = (k: string, val: Node | string) => h('div', null, h('span', { class: 'k' }, k), ' ', val);
                        facts.append(fact('vCPUs', String(v.spec.vcpus ?? '—')), fact('memory', mib(v.spec.memory_mib)),
                                fact('GPU request', gpuRequest(v)), fact('image', v.spec.image ?? 'none'),
                                fact('policy', v.placement?.policy ?? '—'), fact('created', ago(v.created_at)),
                                fact('uuid', h('span', { class: 'mono' }, v.uuid ?? '—')),
                                v.error ? fact('error', h('span', { class: 'err-inline' }, typeof v.error === 'string' ? v.error
                                        : (v.error as { detail?: string }).detail ?? JSON.stringify(v.error))) : '');
                        hist.update(v.state === 'running' || v.state === 'unknown' ? '' : `no samples: the VM is ${v.state}`);
                        clear(gpus.body);
                        for (const p of v.placement?.gpus ?? [])
                                gpus.body.appendChild(h('tr', null, h('td', null, h('a', { href: `#/hosts/${enc(p.gpu.split('/')[0])}` }, p.gpu)),
                                        h('td', null, p.alloc), h('td', null, [p.name, p.vgpu_type].filter(Boolean).join(' as ') || '—'),
                                        h('td', { class: 'num' }, p.alloc.startsWith('mig') ? String(p.start ?? '—') : '—'), h('td', { class: 'mono' }, p.pci)));
                        if (!v.placement?.gpus.length)
                                gpus.body.appendChild(h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'no GPU')));
                        clear(ops.body);
                        for (const o of state.ops.filter((x) => x.target === `vm/${v.name}`).slice(0, 8))
                                ops.body.appendChild(opRow(o, false));
                },
        };
}

// ---------------------------------------------------------------- operations

function opRow(o: Operation, full: boolean): HTMLElement {
        const prog = bar(o.progress ?? 0, 100, `${o.progress ?? 0}%`, o.state === 'failed' ? 'bad' : o.state === 'succeeded' ? 'good' : '');
        return h('tr', { 'data-op': o.id },
                full ? h('td', { class: 'mono' }, o.id) : '',
                h('td', null, o.kind, full ? '' : h('span', { class: 'muted' }, ` ${o.id}`)),
                full ? h('td', null, o.target.startsWith('vm/') ? vmLink(o.target.slice(3)) : o.target.startsWith('host/') ? hostLink(o.target.slice(5)) : o.target) : '',
                h('td', null, stateBadge(o.state)),
                h('td', { class: 'progress' }, prog, ' ', h('span', { class: o.state === 'failed' ? 'err-inline' : 'muted' },
                        o.state === 'failed' ? (o.error?.detail ?? o.message ?? '') : (o.message ?? ''))),
                h('td', { class: 'muted' }, ago(o.updated_at)));
}

export function opsPage(): View {
        const t = table(['ID', 'Kind', 'Target', 'State', 'Progress', 'Updated']);
        const el = h('section', null, h('div', { class: 'pagehead' }, h('h1', null, 'Operations')), t.el);
        return {
                el,
                update() {
                        clear(t.body);
                        for (const o of state.ops)
                                t.body.appendChild(opRow(o, true));
                        if (!state.ops.length)
                                t.body.appendChild(h('tr', null, h('td', { colspan: 6, class: 'muted' }, 'No operations yet.')));
                },
        };
}
