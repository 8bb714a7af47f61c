// SPDX-License-Identifier: MIT
// novnc.d.ts — the part of noVNC's RFB object (docs/API.md in @novnc/novnc) the dashboard
// uses; the package ships no types.
declare module '@novnc/novnc' {
        export default class RFB extends EventTarget {
                constructor(target: HTMLElement, urlOrChannel: string | WebSocket,
                            options?: { shared?: boolean; wsProtocols?: string[];
                                        credentials?: { password?: string } });
                scaleViewport: boolean;
                clipViewport: boolean;
                resizeSession: boolean;
                viewOnly: boolean;
                background: string;
                disconnect(): void;
                focus(): void;
                sendCtrlAltDel(): void;
        }
}
