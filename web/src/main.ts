// SPDX-License-Identifier: MIT
// main.ts — the dashboard's entry: the token (from the URL's fragment or asked for on a 401),
// the hash router (#/, #/hosts/NAME, #/vms, #/vms/NAME, #/ops, #/licenses, #/advisor,
// #/insights), the event stream feeding the store and the page shown, and a slow refresh for
// the live values no event carries (GPU utilization).
import './style.css';
import { advisorPage } from './advisor';
import { onAskToken, takeTokenFromHash } from './api';
import { createVmDialog } from './create';
import { clear } from './dom';
import { streamEvents } from './events';
import { insightsPage } from './insights';
import { licensesPage } from './licenses';
import { notify, onEvent, refresh, refreshAll, state, subscribe } from './store';
import { askTokenDialog, toast } from './ui';
import { hostPage, opsPage, overview, type View, vmPage, vmsPage } from './views';

takeTokenFromHash();
onAskToken(askTokenDialog);

const viewEl = document.getElementById('view')!;
let current: View | null = null;

function route(): void {
        const hash = location.hash.replace(/^#/, '') || '/';
        const parts = hash.split('/').filter(Boolean).map(decodeURIComponent);
        current?.destroy?.();
        let nav = 'overview';
        if (parts[0] === 'hosts' && parts[1]) {
                current = hostPage(parts[1]);
        } else if (parts[0] === 'vms' && parts[1]) {
                current = vmPage(parts[1]);
                nav = 'vms';
        } else if (parts[0] === 'vms') {
                current = vmsPage();
                nav = 'vms';
        } else if (parts[0] === 'ops') {
                current = opsPage();
                nav = 'ops';
        } else if (parts[0] === 'licenses') {
                current = licensesPage();
                nav = 'licenses';
        } else if (parts[0] === 'advisor') {
                current = advisorPage();
                nav = 'advisor';
        } else if (parts[0] === 'insights') {
                current = insightsPage();
                nav = 'insights';
        } else {
                current = overview();
        }
        for (const a of document.querySelectorAll<HTMLElement>('[data-nav]'))
                a.classList.toggle('active', a.dataset.nav === nav);
        clear(viewEl);
        viewEl.appendChild(current.el);
        current.update();
        window.scrollTo(0, 0);
}

subscribe(() => current?.update());
window.addEventListener('hashchange', () => {
        if (/(?:^#|&)token=/.test(location.hash))
                takeTokenFromHash();
        route();
});
document.getElementById('create-vm')!.addEventListener('click', () => createVmDialog());

const conn = document.getElementById('conn')!;
let wasDown = false;
streamEvents((ev) => {
        onEvent(ev);
        current?.onEvent?.(ev);
}, (s, why) => {
        conn.textContent = s === 'live' ? 'live' : s === 'connecting' ? 'connecting' : 'offline';
        conn.className = `conn ${s}`;
        conn.title = s === 'down' ? `event stream: ${why ?? ''}; retrying` : 'event stream';
        if (s === 'live') {
                // Whatever happened while the stream was away.
                void refreshAll();
                if (wasDown) {
                        current?.reload?.();
                        toast('Event stream back.', 'ok', 3000);
                }
                wasDown = false;
        } else if (s === 'down') {
                wasDown = true;
        }
});

route();
void refreshAll().then(() => {
        if (state.error)
                notify();
});
// Utilization and the operations' clocks move without events.
setInterval(() => {
        if (!document.hidden)
                void refresh('gpus', 'hosts');
}, 5000);
