// SPDX-License-Identifier: MIT
// ui.ts — toasts that follow an operation to its end, modal dialogs, and the action runner:
// every change the dashboard makes goes through act(), which shows the API's own words when it
// refuses and the operation's progress when it accepts.
import { ApiError } from './api';
import { clear, h } from './dom';
import { notify, refresh, state, subscribe } from './store';
import type { Operation } from './types';

const toasts = () => document.getElementById('toasts')!;

export function toast(text: string, kind: 'info' | 'ok' | 'error' = 'info', ms = 6000): HTMLElement {
        const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
                     h('span', { class: 'msg' }, text),
                     h('button', { type: 'button', class: 'x', title: 'dismiss',
                                   onclick: () => el.remove() }, '×'));
        toasts().appendChild(el);
        if (ms > 0)
                setTimeout(() => el.remove(), ms);
        return el;
}

// A toast that shows an operation's progress until it ends.
function followOp(label: string, op: Operation): void {
        const msg = h('span', { class: 'msg' });
        const fill = h('span', { class: 'fill' });
        const el = h('div', { class: 'toast info', 'data-op': op.id }, msg,
                     h('span', { class: 'bar mini' }, fill),
                     h('button', { type: 'button', class: 'x', onclick: () => { el.remove(); stop(); } }, '×'));
        toasts().appendChild(el);
        const show = (o: Operation) => {
                fill.style.width = `${o.progress ?? 0}%`;
                if (o.state === 'succeeded') {
                        msg.textContent = `${label}: done${o.message ? ` (${o.message})` : ''}`;
                        el.className = 'toast ok';
                        stop();
                        setTimeout(() => el.remove(), 5000);
                } else if (o.state === 'failed') {
                        msg.textContent = `${label} failed: ${o.error?.detail ?? o.message ?? 'see Operations'}`;
                        el.className = 'toast error';
                        el.setAttribute('role', 'alert');
                        stop();
                } else {
                        msg.textContent = `${label}: ${o.message || o.state} (${o.progress ?? 0}%)`;
                }
        };
        const stop = subscribe(() => {
                const o = state.ops.find((x) => x.id === op.id);
                if (o)
                        show(o);
        });
        show(op);
}

const isOp = (x: unknown): x is Operation =>
        !!x && typeof x === 'object' && typeof (x as Operation).id === 'string' &&
        typeof (x as Operation).kind === 'string' && 'state' in (x as object);

// Carry out a change: the API's refusal in an error toast (or thrown to a dialog with
// rethrow), an accepted operation followed in a toast.
export async function act<T>(label: string, fn: () => Promise<T>, rethrow = false): Promise<T | null> {
        try {
                const ans = await fn();
                if (isOp(ans)) {
                        if (!state.ops.some((o) => o.id === ans.id))
                                state.ops.unshift(ans);
                        followOp(label, ans);
                        void refresh('ops', 'vms', 'gpus', 'hosts');
                } else {
                        toast(`${label}: done`, 'ok');
                        void refresh('vms', 'gpus', 'hosts');
                }
                notify();
                return ans;
        } catch (e) {
                if (rethrow)
                        throw e;
                toast(`${label}: ${e instanceof ApiError || e instanceof Error ? e.message : String(e)}`,
                      'error', 15000);
                return null;
        }
}

// A modal dialog; body gets the dialog's content element. Resolves when it closes.
export function dialog(title: string, build: (body: HTMLElement, close: () => void) => void,
                       cls = ''): HTMLDialogElement {
        const body = h('div', { class: 'dlg-body' });
        const d = h('dialog', { class: `dlg ${cls}` },
                    h('header', null, h('h2', null, title),
                      h('button', { type: 'button', class: 'x', title: 'close', onclick: () => d.close() }, '×')),
                    body);
        document.body.appendChild(d);
        d.addEventListener('close', () => d.remove());
        build(body, () => d.close());
        d.showModal();
        return d;
}

export function errorBox(): { el: HTMLElement; show(e: unknown): void; clear(): void } {
        const el = h('div', { class: 'err', role: 'alert', hidden: true });
        return {
                el,
                show(e) {
                        el.hidden = false;
                        el.textContent = e instanceof Error ? e.message : String(e);
                },
                clear() {
                        el.hidden = true;
                        clear(el);
                },
        };
}

// The token dialog: the API answered 401 (over TCP every request needs a bearer token).
export function askTokenDialog(why: string): Promise<boolean> {
        return new Promise((resolve) => {
                let given = false;
                const d = dialog('Token needed', (body, close) => {
                        const input = h('input', { type: 'password', name: 'token', autocomplete: 'off',
                                                   placeholder: 'gvt_…', size: 40, required: true });
                        const form = h('form', { method: 'dialog' },
                                h('p', null, why),
                                h('p', { class: 'muted' }, 'Make one with ', h('code', null, 'gpuvirt token create NAME --role admin'),
                                  ' (operator is enough to manage VMs; viewer only looks). It is kept in this tab only.'),
                                h('label', null, 'Token ', input),
                                h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Use token')));
                        form.addEventListener('submit', (ev) => {
                                ev.preventDefault();
                                if (!input.value.trim())
                                        return;
                                sessionStorage.setItem('gpuvirt.token', input.value.trim());
                                given = true;
                                close();
                        });
                        body.appendChild(form);
                });
                d.addEventListener('close', () => resolve(given));
        });
}
