// SPDX-License-Identifier: MIT
// licenses.ts — the Licences page (#/licenses; docs/licensing.md): every pool from
// GET /api/v1/licenses with its seats used of total as a bar (over in the warning colour),
// free, policy, counting, term (inactive or expired flagged), price and cost per month; a
// pool's holders on click; the VMs no pool licenses; cost per month by tenant and by VM. A
// small form creates or replaces a pool (PUT /api/v1/licenses/{pool}, admin); the controller
// checks every member and its 400 `detail` is shown next to the form as it is worded.
// Read again when an event of type license.* or vm.* arrives.
import { ApiError, del, enc, get, put } from './api';
import { ago, clear, h, money, moneys } from './dom';
import type { ClusterEvent, LicensePool, Licenses } from './types';
import { dialog, errorBox, toast } from './ui';
import { hostLink, stateBadge, table, type View, vmLink } from './views';

// The editions the controller knows (src/catalog/licensing.h; docs/licensing.md).
const EDITIONS = ['nvaie', 'vcs', 'vws', 'vpc', 'vapps'];

function seatBar(p: LicensePool): HTMLElement {
        const frac = p.seats ? Math.min(1, p.used / p.seats) : p.used ? 1 : 0;
        const fill = h('span', { class: 'fill' });
        fill.style.width = `${(frac * 100).toFixed(1)}%`;
        const text = `${p.used} / ${p.seats}${p.over ? ` (${p.over} over)` : ''}`;
        return h('span', { class: `bar seats${p.over ? ' over' : ''}`, title: text }, fill,
                 h('span', { class: 'txt' }, text));
}

function term(p: LicensePool): HTMLElement {
        const t = p.term ? `${p.term.start} … ${p.term.end}` : 'none';
        return h('span', null, t, p.active ? '' : [' ', h('span', { class: 'badge flag' },
                 p.inactive_reason ?? 'inactive')]);
}

function holdersTable(p: LicensePool): HTMLElement {
        if (!p.holders.length)
                return h('p', { class: 'muted' }, `No VM holds a seat of ${p.name}.`);
        const t = table(['VM', 'Tenant', 'Host', 'State', 'Seats', 'Over', 'Since', 'Cost / month'], 'holders');
        for (const x of p.holders)
                t.body.appendChild(h('tr', { 'data-holder': x.vm, class: x.over ? 'over' : null },
                        h('td', null, vmLink(x.vm)), h('td', null, x.tenant), h('td', null, hostLink(x.host)),
                        h('td', null, stateBadge(x.state)), h('td', { class: 'num' }, String(x.seats)),
                        h('td', null, x.over ? h('span', { class: 'warn' }, 'over') : h('span', { class: 'muted' }, 'no')),
                        h('td', null, x.since ? ago(x.since / 1000) : '—'),
                        h('td', { class: 'num cost' }, money(x.cost_per_month, p.currency))));
        return t.el;
}

// Create (pool undefined) or replace a pool. The form does not check what the controller
// checks: its words say what is wrong.
function poolDialog(p: LicensePool | undefined, done: () => void): void {
        dialog(p ? `Licence pool ${p.name}` : 'New licence pool', (body, close) => {
                const name = h('input', { name: 'pool', value: p?.name ?? '', placeholder: 'vws-main', size: 18,
                                          autocomplete: 'off', readonly: Boolean(p) });
                const edition = h('select', { name: 'edition' }, EDITIONS.map((e) =>
                        h('option', { value: e, selected: e === (p?.edition ?? 'vws') }, e)));
                const seats = h('input', { name: 'seats', type: 'number', value: p ? p.seats : '', size: 6 });
                const policy = h('select', { name: 'policy' }, ['enforce', 'warn'].map((x) =>
                        h('option', { value: x, selected: x === (p?.policy ?? 'enforce') }, x)));
                const counting = h('select', { name: 'counting' }, [['vm', 'per VM'], ['gpu', 'per GPU']].map(([v, l]) =>
                        h('option', { value: v, selected: v === (p?.counting ?? 'vm') }, l)));
                const pt = h('input', { name: 'passthrough', type: 'checkbox', checked: p?.passthrough ?? false });
                const mig = h('input', { name: 'mig', type: 'checkbox', checked: p?.mig ?? false });
                const start = h('input', { name: 'term-start', type: 'date', value: p?.term?.start ?? '' });
                const end = h('input', { name: 'term-end', type: 'date', value: p?.term?.end ?? '' });
                const price = h('input', { name: 'price', type: 'number', step: 'any', size: 8,
                                           value: p?.price_per_seat_year ?? '', placeholder: 'none' });
                const currency = h('input', { name: 'currency', value: p?.currency ?? 'USD', size: 4, maxlength: 3 });
                const err = errorBox();
                const buttons = h('div', { class: 'buttons' });
                if (p)
                        buttons.appendChild(h('button', { type: 'button', class: 'danger', 'data-action': 'delete-pool', onclick: async () => {
                                if (!confirm(`Delete licence pool ${p.name}?`))
                                        return;
                                err.clear();
                                try {
                                        await del(`/api/v1/licenses/${enc(p.name)}`);
                                        toast(`licence pool ${p.name}: deleted`, 'ok');
                                        close();
                                        done();
                                } catch (e) {
                                        err.show(e);
                                }
                        } }, 'Delete'));
                buttons.appendChild(h('button', { type: 'submit', class: 'primary' }, p ? 'Save' : 'Create'));
                // novalidate: the controller is the one that checks, in its own words.
                const form = h('form', { novalidate: true },
                        h('div', { class: 'row' }, h('label', null, 'Pool ', name), h('label', null, 'Edition ', edition),
                          h('label', null, 'Seats ', seats)),
                        h('div', { class: 'row' }, h('label', null, 'Policy ', policy), h('label', null, 'Counting ', counting),
                          h('label', null, pt, ' pass-through holds seats'), h('label', null, mig, ' bare MIG holds seats')),
                        h('div', { class: 'row' }, h('label', null, 'Term ', start, ' to ', end),
                          h('label', null, 'Price per seat per year ', price), h('label', null, 'Currency ', currency)),
                        h('p', { class: 'muted' }, 'Leave the term empty for none and the price empty for no costs (gpuvirt invents no price). ',
                          'Saving replaces the whole pool; it needs an admin token.'),
                        err.el, buttons);
                form.addEventListener('submit', async (ev) => {
                        ev.preventDefault();
                        err.clear();
                        const num = (v: string) => (v.trim() === '' ? null : Number(v));
                        const body = {
                                edition: edition.value,
                                seats: num(seats.value),
                                policy: policy.value,
                                counting: counting.value,
                                passthrough: pt.checked,
                                mig: mig.checked,
                                term: start.value || end.value ? { start: start.value, end: end.value } : null,
                                price_per_seat_year: num(price.value),
                                currency: currency.value.trim(),
                        };
                        const n = name.value.trim();
                        if (!n) {
                                err.show('Name the pool.');
                                return;
                        }
                        try {
                                await put(`/api/v1/licenses/${enc(n)}`, body);
                                toast(`licence pool ${n}: saved`, 'ok');
                                close();
                                done();
                        } catch (e) {
                                err.show(e);
                        }
                });
                body.appendChild(form);
                (p ? seats : name).focus();
        });
}

export function licensesPage(): View {
        let data: Licenses | null = null;
        let loadErr: string | null = null;
        const open = new Set<string>();
        const summary = h('div', { class: 'summary' });
        const err = h('div', { class: 'err', hidden: true });
        const pools = table(['Pool', 'Edition', 'Seats used', 'Free', 'Policy', 'Counting', 'Term',
                             'Price / seat / year', 'Cost / month', ''], 'pools');
        const unlicensed = table(['VM', 'Tenant', 'Host', 'State', 'Needs']);
        const byTenant = table(['Tenant', 'Cost / month']);
        const byVm = table(['VM', 'Cost / month']);
        let timer: number | null = null;
        let gone = false;

        const load = async () => {
                try {
                        data = await get<Licenses>('/api/v1/licenses');
                        loadErr = null;
                } catch (e) {
                        loadErr = e instanceof ApiError || e instanceof Error ? e.message : String(e);
                }
                if (!gone)
                        view.update();
        };
        const soon = () => {
                if (timer !== null)
                        clearTimeout(timer);
                timer = window.setTimeout(() => { timer = null; void load(); }, 150);
        };

        const el = h('section', null,
                h('div', { class: 'pagehead' }, h('h1', null, 'Licences'), h('span', { class: 'spacer' }),
                  h('button', { type: 'button', class: 'primary', 'data-action': 'new-pool',
                                onclick: () => poolDialog(undefined, soon) }, 'New pool…')),
                err, summary, h('h2', null, 'Pools'), pools.el,
                h('p', { class: 'muted' }, 'Click a pool for the VMs that hold its seats. Seats follow from the VMs\' states: ',
                  'pending, starting, running, stopping and unknown VMs hold them.'),
                h('h2', null, 'Unlicensed VMs'), unlicensed.el,
                h('div', { class: 'two' }, h('div', null, h('h2', null, 'Cost per month by tenant'), byTenant.el),
                  h('div', null, h('h2', null, 'Cost per month by VM'), byVm.el)));

        const view: View = {
                el,
                destroy() { gone = true; if (timer !== null) clearTimeout(timer); },
                onEvent(ev: ClusterEvent) {
                        if (ev.type.startsWith('license.') || ev.type.startsWith('vm.'))
                                soon();
                },
                reload: soon,
                update() {
                        err.hidden = !loadErr;
                        err.textContent = loadErr ?? '';
                        clear(summary);
                        clear(pools.body);
                        clear(unlicensed.body);
                        clear(byTenant.body);
                        clear(byVm.body);
                        if (!data) {
                                pools.body.appendChild(h('tr', null, h('td', { colspan: 10, class: 'muted' }, loadErr ? '—' : 'Loading…')));
                                return;
                        }
                        const card = (title: string, big: string | number, small: string) =>
                                h('div', { class: 'card' }, h('div', { class: 'k' }, title), h('div', { class: 'v' }, String(big)),
                                  h('div', { class: 'muted' }, small));
                        const used = data.pools.reduce((s, p) => s + p.used, 0);
                        const seats = data.pools.reduce((s, p) => s + p.seats, 0);
                        const over = data.pools.reduce((s, p) => s + p.over, 0);
                        summary.append(
                                card('Pools', data.pools.length, `${data.pools.filter((p) => !p.active).length} inactive`),
                                card('Seats used', `${used} / ${seats}`, over ? `${over} over` : 'none over'),
                                card('Unlicensed VMs', data.unlicensed.length, 'need a seat no pool offers'),
                                card('Cost per month', moneys(data.cost.per_month), 'at the pools\' prices'));
                        if (over)
                                summary.children[1].classList.add('warn-card');
                        for (const p of data.pools) {
                                const isOpen = open.has(p.name);
                                const row = h('tr', { 'data-pool': p.name, class: `click${isOpen ? ' open' : ''}${p.over ? ' over' : ''}`,
                                                      title: 'show the VMs holding its seats' },
                                        h('td', { class: 'strong' }, h('span', { class: 'caret' }, isOpen ? '▾ ' : '▸ '), p.name),
                                        h('td', null, p.edition, p.passthrough ? h('span', { class: 'muted' }, ' +pass-through') : '',
                                          p.mig ? h('span', { class: 'muted' }, ' +MIG') : ''),
                                        h('td', { class: 'seats' }, seatBar(p)),
                                        h('td', { class: 'num' }, String(p.free)),
                                        h('td', null, p.policy),
                                        h('td', null, p.counting === 'gpu' ? 'per GPU' : 'per VM'),
                                        h('td', { class: 'term' }, term(p)),
                                        h('td', { class: 'num' }, p.price_per_seat_year === null ? h('span', { class: 'muted' }, 'none') : money(p.price_per_seat_year, p.currency)),
                                        h('td', { class: 'num cost' }, p.price_per_seat_year === null ? h('span', { class: 'muted' }, '—') : money(p.cost_per_month, p.currency)),
                                        h('td', null, h('button', { type: 'button', class: 'small', 'data-action': 'edit-pool', onclick: (ev: Event) => {
                                                ev.stopPropagation();
                                                poolDialog(p, soon);
                                        } }, 'Edit…')));
                                row.addEventListener('click', () => {
                                        if (!open.delete(p.name))
                                                open.add(p.name);
                                        view.update();
                                });
                                pools.body.appendChild(row);
                                if (isOpen)
                                        pools.body.appendChild(h('tr', { class: 'detail', 'data-holders': p.name },
                                                h('td', { colspan: 10 }, holdersTable(p))));
                        }
                        if (!data.pools.length)
                                pools.body.appendChild(h('tr', null, h('td', { colspan: 10, class: 'muted' },
                                        'No licence pools: vGPU VMs run unlicensed as far as gpuvirt knows. New pool… makes one.')));
                        for (const u of data.unlicensed)
                                unlicensed.body.appendChild(h('tr', { 'data-unlicensed': u.vm },
                                        h('td', null, vmLink(u.vm)), h('td', null, u.tenant), h('td', null, hostLink(u.host)),
                                        h('td', null, stateBadge(u.state)), h('td', null, u.needs.join(' or '))));
                        if (!data.unlicensed.length)
                                unlicensed.body.appendChild(h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'none')));
                        const costRows = (t: { body: HTMLTableSectionElement }, m: Record<string, Record<string, number>>,
                                          link: (k: string) => Node | string, attr: string) => {
                                const e = Object.entries(m).sort((a, b) => a[0].localeCompare(b[0]));
                                for (const [k, v] of e)
                                        t.body.appendChild(h('tr', { [attr]: k }, h('td', null, link(k)), h('td', { class: 'num' }, moneys(v))));
                                if (!e.length)
                                        t.body.appendChild(h('tr', null, h('td', { colspan: 2, class: 'muted' }, 'no priced seats held')));
                        };
                        costRows(byTenant, data.cost.by_tenant, (k) => k, 'data-tenant');
                        costRows(byVm, data.cost.by_vm, (k) => vmLink(k), 'data-cost-vm');
                },
        };
        void load();
        return view;
}
