// SPDX-License-Identifier: MIT
// consoles.ts — a VM's serial console (xterm.js) and graphical console (noVNC) on the VM page,
// each a WebSocket to the controller (docs/dashboard.md "Consoles", docs/api.md "Consoles").
// A browser's WebSocket cannot carry an Authorization header, so the token goes as the
// subprotocol "gpuvirt.bearer.<token>" beside "gpuvirt" (serial) or "binary" (noVNC); the
// controller chooses the latter and never echoes the token. xterm.js and noVNC are loaded when
// their tab is first opened (separate chunks), so the dashboard's first load does not carry
// them. A socket lives only while its tab shows.
import '@xterm/xterm/css/xterm.css';
import { token } from './api';
import { h } from './dom';

function wsUrl(vm: string, kind: 'console' | 'vnc'): string {
        const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
        return `${proto}//${location.host}/api/v1/vms/${encodeURIComponent(vm)}/${kind}/ws`;
}

function protocols(first: string): string[] {
        const t = token();
        return t ? [first, `gpuvirt.bearer.${t}`] : [first];
}

// 1000 and 1001 are ends, anything else a failure; 1006 is the browser's "no close frame"
// (a refusal before the upgrade lands here too: the browser hides its HTTP answer).
function closeWords(code: number, reason: string): string {
        if (code === 1000 || code === 1001)
                return `closed: ${reason || 'ended'}`;
        if (code === 1006)
                return 'closed: the connection failed or was refused (is the VM running, and '
                        + 'does your token have the operator role?)';
        return `closed (${code}): ${reason || 'error'}`;
}

export interface ConsolePanel {
        el: HTMLElement;
        open(): void;  // connect (the tab is shown)
        close(): void; // disconnect (the tab is hidden or the page left)
}

function panel(kind: string): { el: HTMLElement; status: HTMLElement; screen: HTMLElement;
                                 bar: HTMLElement; set(state: string, words: string): void } {
        const status = h('span', { class: 'console-status muted' }, 'not connected');
        const bar = h('div', { class: 'console-bar' }, status, h('span', { class: 'spacer' }));
        const screen = h('div', { class: `console-screen ${kind}` });
        const el = h('div', { class: 'console-panel', 'data-console': kind, 'data-state': 'closed' },
                     bar, screen);
        return {
                el, status, screen, bar,
                set(state: string, words: string) {
                        el.dataset.state = state;
                        status.textContent = words;
                        status.className = `console-status ${state === 'open' ? 'ok' : state === 'failed' ? 'err-inline' : 'muted'}`;
                },
        };
}

export function serialConsole(vm: string): ConsolePanel {
        const p = panel('serial');
        let ws: WebSocket | null = null;
        let term: import('@xterm/xterm').Terminal | null = null;
        let gen = 0;
        const reconnect = h('button', { type: 'button', class: 'small', onclick: () => { close(); open(); } }, 'Reconnect');
        p.bar.append(reconnect);

        async function open(): Promise<void> {
                const mine = ++gen;
                if (!term) {
                        p.set('loading', 'loading the terminal…');
                        const { Terminal } = await import('@xterm/xterm');
                        if (mine !== gen)
                                return;
                        term = new Terminal({ cols: 100, rows: 32, fontSize: 13, scrollback: 5000,
                                              convertEol: false, cursorBlink: true,
                                              theme: { background: '#0b0e13' } });
                        term.open(p.screen);
                        term.onData((d) => { if (ws?.readyState === WebSocket.OPEN) ws.send(d); });
                }
                p.set('connecting', 'connecting…');
                const s = new WebSocket(wsUrl(vm, 'console'), protocols('gpuvirt'));
                s.binaryType = 'arraybuffer';
                ws = s;
                s.onopen = () => { if (ws === s) { p.set('open', 'connected: the console log\'s tail, then live; type to send'); term?.focus(); } };
                s.onmessage = (e) => {
                        if (ws === s)
                                term?.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
                };
                s.onclose = (e) => {
                        if (ws !== s)
                                return;
                        ws = null;
                        p.set(e.code === 1000 || e.code === 1001 ? 'closed' : 'failed', closeWords(e.code, e.reason));
                };
        }
        function close(): void {
                gen++;
                const s = ws;
                ws = null;
                s?.close(1000, 'tab closed');
                p.set('closed', 'not connected');
        }
        return { el: p.el, open: () => { void open(); }, close };
}

export function displayConsole(vm: string): ConsolePanel {
        const p = panel('display');
        type Rfb = import('@novnc/novnc').default;
        let rfb: Rfb | null = null;
        let gen = 0;
        const cad = h('button', { type: 'button', class: 'small', onclick: () => rfb?.sendCtrlAltDel() }, 'Ctrl+Alt+Del');
        const reconnect = h('button', { type: 'button', class: 'small', onclick: () => { close(); open(); } }, 'Reconnect');
        p.bar.append(cad, reconnect);

        async function open(): Promise<void> {
                const mine = ++gen;
                p.set('loading', 'loading the VNC client…');
                const { default: RFB } = await import('@novnc/novnc');
                if (mine !== gen)
                        return;
                p.set('connecting', 'connecting…');
                const r = new RFB(p.screen, wsUrl(vm, 'vnc'), { shared: true, wsProtocols: protocols('binary') });
                r.scaleViewport = true;
                r.background = '#0b0e13';
                rfb = r;
                r.addEventListener('connect', () => { if (rfb === r) p.set('open', 'connected'); });
                r.addEventListener('disconnect', (e: Event) => {
                        if (rfb !== r)
                                return;
                        rfb = null;
                        const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
                        p.set(clean ? 'closed' : 'failed', clean ? 'closed: the display ended'
                                : closeWords(1006, ''));
                });
                r.addEventListener('securityfailure', (e: Event) => {
                        const d = (e as CustomEvent<{ reason?: string }>).detail;
                        p.set('failed', `the VNC server refused: ${d?.reason ?? 'security failure'}`);
                });
        }
        function close(): void {
                gen++;
                const r = rfb;
                rfb = null;
                r?.disconnect();
                p.screen.replaceChildren();
                p.set('closed', 'not connected');
        }
        return { el: p.el, open: () => { void open(); }, close };
}
