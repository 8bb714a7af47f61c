// SPDX-License-Identifier: MIT
// insights.ts — the Insights page (#/insights; GET /api/v1/insights, documented above
// gv_controller_insights() in src/controller/controller.h): from the metrics history over a
// window, with a threshold under which a mean counts as idle,
//   - idle pass-through GPUs with their evidence — a stopped VM that keeps its GPU (certain),
//     or its QEMU's CPU as a proxy, said plainly, since a passed-through GPU's utilization
//     cannot be read — and what converting the GPU to MIG or vGPU would free and cost;
//   - fragmentation per MIG GPU: the layout now and the re-layout plan drawn as memory slices
//     (gpu.ts), the moves in order with the VMs that need a live migration;
//   - licence seats held by stopped or idle VMs.
// Window and threshold are chosen on the page; read again on vm.*, gpu.* and license.* events.
import { ApiError, get } from './api';
import { ago, h, mib, money } from './dom';
import { drawSlices, type SliceInstance } from './gpu';
import type { ClusterEvent, Fragmentation, IdlePassthrough, Insights, Licenses, Measured } from './types';
import { hostLink, stateBadge, table, type View, vmLink } from './views';

const WINDOWS = ['5m', '15m', '1h', '6h', '24h'];
const PASSTHROUGH_BLIND = 'GPU utilization cannot be read on a passed-through GPU';

// The choice, kept while the dashboard is open.
let windowChoice = '1h';
let thresholdChoice = '5';

function pctOf(v: number | null): string {
        return v === null ? '—' : `${+v.toFixed(2)}%`;
}

function evidence(m: Measured, words: Record<string, string>): HTMLElement {
        return h('div', { class: 'evidence' },
                h('span', { class: `badge ev ev-${m.evidence}`, 'data-evidence': m.evidence }, m.evidence),
                m.proxy ? h('span', { class: 'badge flag' }, 'proxy') : '',
                ' ', h('span', { class: 'meaning' }, words[m.evidence] ?? ''),
                m.value !== null || m.samples
                        ? h('div', { class: 'muted small' }, `mean ${pctOf(m.value)}, peak ${pctOf(m.peak)}, ${m.samples} sample${m.samples === 1 ? '' : 's'}`)
                        : '',
                m.since ? h('div', { class: 'muted small' }, `idle since ${ago(m.since / 1000)}`) : '');
}

function convertList(x: IdlePassthrough): HTMLElement {
        return h('ul', { class: 'convert' }, x.convert.map((c) => {
                if (c.mode === 'mig')
                        return h('li', { 'data-convert': 'mig' }, h('b', null, 'MIG'), `: ${c.instances} × ${c.profile} (${mib(c.memory_mib)} each), `,
                                 c.licence === 'none' ? 'no licence' : c.cost_per_year !== null && c.cost_per_year !== undefined
                                         ? `${money(c.cost_per_year, c.currency)}/yr` : 'licensed by a pool',
                                 c.cost_reason ? h('span', { class: 'muted' }, ` (${c.cost_reason})`) : '',
                                 h('div', { class: 'mono muted small' }, c.layout));
                return h('li', { 'data-convert': 'vgpu' }, h('b', null, 'vGPU'), `: ${c.instances} × ${c.type} (${mib(c.framebuffer_mib)} each), `,
                         `${c.seats} seat${c.seats === 1 ? '' : 's'} of ${c.edition} (${c.seats_free} free), `,
                         c.cost_per_year !== null ? h('b', null, `${money(c.cost_per_year, c.currency)}/yr`)
                                 : h('span', { class: 'muted' }, c.cost_reason ?? 'no price'));
        }));
}

// The planned layout: each instance at the start its move gives it.
function planned(f: Fragmentation): SliceInstance[] {
        const moves = f.plan?.moves ?? [];
        return f.instances.map((i) => {
                const m = moves.find((x) => x.profile === i.profile && x.from === i.start && (x.vm ?? null) === (i.vm ?? null));
                return m ? { profile: i.profile, start: m.to, vm: i.vm, cls: 'moved', title: `${i.profile}: slices ${m.from_slices} → ${m.to_slices} (step ${m.step})` }
                         : { profile: i.profile, start: i.start, vm: i.vm };
        });
}

function fragCard(f: Fragmentation): HTMLElement {
        const now: SliceInstance[] = f.instances.map((i) => {
                const moves = f.plan?.moves.some((m) => m.profile === i.profile && m.from === i.start && (m.vm ?? null) === (i.vm ?? null));
                return { profile: i.profile, start: i.start, vm: i.vm, cls: moves ? 'moving' : '' };
        });
        const facts = [
                f.measure !== null ? `fragmentation ${f.measure}` : null,
                f.free_slices !== undefined ? `${f.free_slices} free slice${f.free_slices === 1 ? '' : 's'}` : null,
                f.largest_free_run !== undefined ? `largest free run ${f.largest_free_run}` : null,
                f.largest_free_profile !== undefined ? `largest addable ${f.largest_free_profile ?? 'none'}` : null,
        ].filter(Boolean).join(' · ');
        const card = h('div', { class: 'frag card', 'data-frag': f.name },
                h('div', { class: 'frag-head' }, h('a', { href: `#/hosts/${encodeURIComponent(f.host)}`, class: 'strong' }, f.name), ' ',
                  h('span', { class: 'muted' }, f.model), ' ', h('span', { class: `badge verdict v-${f.verdict}` }, f.verdict),
                  ' ', h('span', { class: 'muted small' }, facts)),
                h('p', { class: 'why' }, f.why),
                h('div', { class: 'layout-label muted' }, 'now'), h('div', { class: 'layout-now' }, drawSlices(f.model, now)));
        if (f.plan) {
                const t = table(['Step', 'VM', 'Profile', 'From', 'To', 'How', 'Live migration'], 'moves');
                for (const m of f.plan.moves)
                        t.body.appendChild(h('tr', { 'data-move': m.vm ?? `${m.profile}@${m.from}`, class: m.needs_live_migration ? 'live' : null },
                                h('td', { class: 'num' }, String(m.step)), h('td', null, m.vm ? vmLink(m.vm) : h('span', { class: 'muted' }, 'no VM')),
                                h('td', null, m.profile), h('td', { class: 'mono' }, m.from_slices), h('td', { class: 'mono' }, m.to_slices),
                                h('td', null, m.direct ? 'in place' : `parked on another GPU before step ${m.park_before ?? '?'}`),
                                h('td', null, m.needs_live_migration ? h('span', { class: 'badge flag' }, 'needs live migration')
                                        : h('span', { class: 'muted' }, 'no'))));
                card.append(h('div', { class: 'layout-label muted' }, `planned: frees ${f.plan.frees_profile} (largest free run ${f.plan.largest_free_run}), `,
                                `${f.plan.live_migrations} live migration${f.plan.live_migrations === 1 ? '' : 's'}`),
                            h('div', { class: 'layout-plan' }, drawSlices(f.model, planned(f))), t.el);
        }
        return card;
}

export function insightsPage(): View {
        let data: Insights | null = null;
        let currency = new Map<string, string>(); // pool → its currency
        let loadErr: string | null = null;
        let gone = false;
        let timer: number | null = null;
        let asked = 0;
        const win = h('select', { name: 'window' }, WINDOWS.map((w) => h('option', { value: w, selected: w === windowChoice }, w)));
        const thr = h('input', { name: 'threshold', type: 'number', value: thresholdChoice, size: 4, step: 'any' });
        const err = h('div', { class: 'err', role: 'alert', hidden: true });
        const stamp = h('span', { class: 'muted stamp' });
        const idle = table(['GPU', 'Model', 'VM', 'State', 'Evidence', 'Converting frees', 'Converting to'], 'idle-pt');
        const frag = h('div', { class: 'frags' });
        const seats = table(['Pool', 'Edition', 'VM', 'Host', 'State', 'Seats', 'Cost / month', 'Evidence'], 'idle-seats');

        const load = async () => {
                const n = ++asked;
                windowChoice = win.value;
                thresholdChoice = thr.value;
                try {
                        const q = `window=${encodeURIComponent(win.value)}&threshold=${encodeURIComponent(thr.value.trim() || '5')}`;
                        const [ins, lic] = await Promise.all([get<Insights>(`/api/v1/insights?${q}`),
                                                              get<Licenses>('/api/v1/licenses').catch(() => null)]);
                        if (n !== asked)
                                return;
                        data = ins;
                        currency = new Map((lic?.pools ?? []).map((p) => [p.name, p.currency]));
                        loadErr = null;
                } catch (e) {
                        if (n !== asked)
                                return;
                        loadErr = e instanceof ApiError || e instanceof Error ? e.message : String(e);
                }
                if (!gone)
                        view.update();
        };
        const soon = (ms = 300) => {
                if (timer !== null)
                        clearTimeout(timer);
                timer = window.setTimeout(() => { timer = null; void load(); }, ms);
        };
        win.addEventListener('change', () => soon(0));
        thr.addEventListener('change', () => soon(0));

        const el = h('section', null,
                h('div', { class: 'pagehead' }, h('h1', null, 'Insights'), h('span', { class: 'spacer' }),
                  h('label', null, 'Window ', win), h('label', null, 'Idle under (%) ', thr),
                  h('button', { type: 'button', 'data-action': 'refresh', onclick: () => soon(0) }, 'Refresh'), stamp),
                err,
                h('h2', null, 'Idle pass-through GPUs'),
                h('p', { class: 'muted' }, `${PASSTHROUGH_BLIND}: the host driver does not see it. The evidence is a stopped VM that keeps its GPU `,
                  '(certain), or the VM\'s QEMU CPU under the threshold (a proxy).'),
                idle.el,
                h('h2', null, 'MIG fragmentation'), frag,
                h('h2', null, 'Licence seats held by stopped or idle VMs'), seats.el);

        const view: View = {
                el,
                destroy() { gone = true; if (timer !== null) clearTimeout(timer); },
                onEvent(ev: ClusterEvent) {
                        if (/^(vm|gpu|license)\./.test(ev.type))
                                soon(1000);
                },
                reload: () => soon(0),
                update() {
                        err.hidden = !loadErr;
                        err.textContent = loadErr ?? '';
                        idle.body.replaceChildren();
                        seats.body.replaceChildren();
                        frag.replaceChildren();
                        if (!data) {
                                idle.body.appendChild(h('tr', null, h('td', { colspan: 7, class: 'muted' }, loadErr ? '—' : 'Loading…')));
                                return;
                        }
                        stamp.textContent = `over ${data.window}, under ${data.threshold}%, as of ${new Date(data.generated_ms).toLocaleTimeString()}`;
                        const words = data.evidence ?? {};
                        for (const x of data.idle_passthrough)
                                idle.body.appendChild(h('tr', { 'data-idle-gpu': x.name, 'data-vm': x.vm },
                                        h('td', null, h('a', { href: `#/hosts/${encodeURIComponent(x.host)}`, class: 'strong' }, x.name),
                                          h('div', { class: 'mono muted small' }, x.gpu)),
                                        h('td', null, x.model), h('td', null, vmLink(x.vm)), h('td', null, stateBadge(x.state)),
                                        h('td', { class: 'evidence-cell' }, evidence(x, words),
                                          x.proxy ? h('div', { class: 'warn small proxy-note' },
                                                  `A proxy: ${PASSTHROUGH_BLIND}; the VM's QEMU CPU stands in for it.`) : '',
                                          h('div', { class: 'muted small' }, `GPU utilization: ${x.gpu_util}`)),
                                        h('td', null, `${x.frees.gpus} GPU${x.frees.gpus === 1 ? '' : 's'}`,
                                          x.frees.memory_mib !== null ? `, ${mib(x.frees.memory_mib)}` : ''),
                                        h('td', null, convertList(x))));
                        if (!data.idle_passthrough.length)
                                idle.body.appendChild(h('tr', null, h('td', { colspan: 7, class: 'muted' },
                                        `No pass-through GPU looks idle over ${data.window} at ${data.threshold}%.`)));
                        for (const f of data.fragmentation)
                                frag.appendChild(fragCard(f));
                        if (!data.fragmentation.length)
                                frag.appendChild(h('p', { class: 'muted' }, 'No MIG GPU holds instances.'));
                        for (const s of data.idle_seats)
                                seats.body.appendChild(h('tr', { 'data-idle-seat': s.vm },
                                        h('td', null, s.pool), h('td', null, s.edition), h('td', null, vmLink(s.vm)), h('td', null, hostLink(s.host)),
                                        h('td', null, stateBadge(s.state)), h('td', { class: 'num' }, String(s.seats)),
                                        h('td', { class: 'num' }, s.cost_per_month === null ? '—' : money(s.cost_per_month, currency.get(s.pool) ?? null)),
                                        h('td', null, evidence(s, words))));
                        if (!data.idle_seats.length)
                                seats.body.appendChild(h('tr', null, h('td', { colspan: 8, class: 'muted' }, 'No seat is held by a stopped or idle VM.')));
                },
        };
        void load();
        return view;
}
