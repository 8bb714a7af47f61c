// SPDX-License-Identifier: MIT
// mig-layout.ts — the "MIG layout…" dialog of a host's GPU: how many instances of each profile
// the GPU should have, a preview of where they would land (the catalog's placements, biggest
// first, as the controller's layout apply does), and POST /api/v1/hosts/{host}/gpus/{i}/mig.
// The controller checks the layout and says in its own words why one cannot be made (a VM on
// the GPU, an impossible layout); those words are shown as they are.
import { enc, post } from './api';
import { h } from './dom';
import { migGeometry, migProfiles, type Profile } from './gpu';
import type { Gpu } from './types';
import { act, dialog, errorBox } from './ui';

// Instances in the order the layout is asked for: the biggest profile first.
function wanted(counts: Map<string, number>, profiles: Profile[]): string[] {
        const out: string[] = [];
        for (const p of [...profiles].sort((a, b) => b.memory_slices - a.memory_slices))
                for (let i = 0; i < (counts.get(p.name) ?? 0); i++)
                        out.push(p.name);
        return out;
}

// A first-fit preview on an empty GPU: [profile, start][], or the profile that does not fit.
export function previewLayout(model: string, names: string[]):
        { placed: [string, number][]; misfit: string | null } {
        const geo = migGeometry(model);
        const n = geo?.memory_slices ?? 8;
        const taken = new Array(n).fill(false);
        const placed: [string, number][] = [];
        for (const name of names) {
                const p = migProfiles(model).find((x) => x.name === name);
                const start = p?.placements.find((s) =>
                        s + p.memory_slices <= n && taken.slice(s, s + p.memory_slices).every((t) => !t));
                if (!p || start === undefined)
                        return { placed, misfit: name };
                for (let i = start; i < start + p.memory_slices; i++)
                        taken[i] = true;
                placed.push([name, start]);
        }
        return { placed, misfit: null };
}

export function migLayoutDialog(g: Gpu): void {
        const profiles = migProfiles(g.model);
        const counts = new Map<string, number>();
        for (const gi of g.mig?.gpu_instances ?? [])
                counts.set(gi.profile, (counts.get(gi.profile) ?? 0) + 1);
        dialog(`MIG layout of ${g.name}`, (body, close) => {
                const n = migGeometry(g.model)?.memory_slices ?? 8;
                const err = errorBox();
                const preview = h('div', { class: 'slices preview', style: `grid-template-columns: repeat(${n}, 1fr)` });
                const verdict = h('p', { class: 'layout-verdict muted' });
                const draw = () => {
                        preview.replaceChildren();
                        const { placed, misfit } = previewLayout(g.model, wanted(counts, profiles));
                        for (const [name, start] of placed) {
                                const p = profiles.find((x) => x.name === name)!;
                                const cell = h('div', { class: 'gi idle', title: `${name} at slice ${start}` }, h('b', null, name));
                                cell.style.gridColumn = `${start + 1} / span ${p.memory_slices}`;
                                preview.appendChild(cell);
                        }
                        verdict.textContent = misfit
                                ? `${misfit} does not fit beside the others (${n} memory slices).`
                                : placed.length ? `${placed.length} instance(s): ${placed.map(([p, s]) => `${p}@${s}`).join(', ')}`
                                : 'No instances: the GPU stays in MIG mode, empty.';
                        verdict.classList.toggle('bad', Boolean(misfit));
                };
                const rows = profiles.map((p) => {
                        const input = h('input', { type: 'number', min: '0', max: String(p.placements.length),
                                                   name: `count-${p.name}`, value: String(counts.get(p.name) ?? 0) }) as HTMLInputElement;
                        input.addEventListener('input', () => {
                                const v = Number.parseInt(input.value, 10);
                                counts.set(p.name, Number.isFinite(v) && v > 0 ? v : 0);
                                draw();
                        });
                        return h('tr', null, h('td', { class: 'strong' }, p.name),
                                 h('td', { class: 'num' }, `${Math.round(p.memory_mib / 1024)} GiB`),
                                 h('td', { class: 'num' }, `${p.memory_slices}/${n}`), h('td', null, input));
                });
                const form = h('form', null,
                        h('p', { class: 'muted' }, `${g.model} at ${g.pci}, mode ${g.mode}. The layout replaces the GPU's instances; ` +
                          'it is refused while a VM uses one of them (the controller names the VM).'),
                        h('table', { class: 'grid' }, h('thead', null, h('tr', null, h('th', null, 'profile'), h('th', null, 'memory'),
                          h('th', null, 'slices'), h('th', null, 'count'))), h('tbody', null, rows)),
                        preview, verdict, err.el,
                        h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Apply layout')));
                form.addEventListener('submit', async (ev) => {
                        ev.preventDefault();
                        err.clear();
                        const list = wanted(counts, profiles);
                        try {
                                await act(`${g.name} MIG layout`, () =>
                                        post(`/api/v1/hosts/${enc(g.host)}/gpus/${g.index}/mig`, { profiles: list }), true);
                                close();
                        } catch (e) {
                                err.show(e);
                        }
                });
                draw();
                body.appendChild(form);
        });
}
