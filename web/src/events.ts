// SPDX-License-Identifier: MIT
// events.ts — the controller's event stream (GET /api/v1/events, Server-Sent Events) read with
// fetch(), because EventSource cannot send the Authorization header the API wants over TCP.
// Reconnects with ?after=SEQ of the last event seen, so nothing is missed across a drop; a
// refresh of everything follows each reconnect in case the gap was longer than the log keeps.
import { headers } from './api';
import type { ClusterEvent } from './types';

export type ConnState = 'connecting' | 'live' | 'down';

export function streamEvents(onEvent: (e: ClusterEvent) => void,
                             onState: (s: ConnState, why?: string) => void): void {
        let after: number | null = null;
        let delay = 500;

        async function once(): Promise<void> {
                onState('connecting');
                const url = `/api/v1/events${after !== null ? `?after=${after}` : ''}`;
                const res = await fetch(url, { headers: headers({ Accept: 'text/event-stream' }),
                                               cache: 'no-store' });
                if (!res.ok || !res.body) {
                        let why = `HTTP ${res.status}`;
                        try {
                                why = (await res.json()).detail ?? why;
                        } catch { /* not a problem object */ }
                        throw new Error(why);
                }
                onState('live');
                delay = 500;
                const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
                let buf = '';
                for (;;) {
                        const { value, done } = await reader.read();
                        if (done)
                                break;
                        buf += value;
                        let i: number;
                        while ((i = buf.indexOf('\n\n')) >= 0) {
                                const block = buf.slice(0, i);
                                buf = buf.slice(i + 2);
                                const data = block.split('\n').filter((l) => l.startsWith('data:'))
                                        .map((l) => l.slice(5).trimStart()).join('\n');
                                if (!data)
                                        continue; // a comment (": keep-alive")
                                try {
                                        const ev = JSON.parse(data) as ClusterEvent;
                                        if (typeof ev.seq === 'number')
                                                after = ev.seq;
                                        onEvent(ev);
                                } catch { /* not one of ours */ }
                        }
                }
        }

        async function loop(): Promise<void> {
                for (;;) {
                        let why = 'the stream ended';
                        try {
                                await once();
                        } catch (e) {
                                why = e instanceof Error ? e.message : String(e);
                        }
                        onState('down', why);
                        await new Promise((r) => setTimeout(r, delay));
                        delay = Math.min(delay * 2, 10000);
                }
        }
        void loop();
}
