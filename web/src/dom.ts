// SPDX-License-Identifier: MIT
// dom.ts — a tiny element builder (no framework): h('td', {class: 'num'}, '42').
// Text is always set as text, never parsed as HTML, so names from the API cannot inject markup.

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null,
                                                         ...children: Child[]):
        HTMLElementTagNameMap[K] {
        const el = document.createElement(tag);
        for (const [k, v] of Object.entries(attrs ?? {})) {
                if (v === null || v === undefined || v === false)
                        continue;
                if (typeof v === 'function')
                        el.addEventListener(k.replace(/^on/, ''), v);
                else if (k === 'value' && 'value' in el)
                        (el as HTMLInputElement).value = String(v);
                else
                        el.setAttribute(k, v === true ? '' : String(v));
        }
        append(el, children);
        return el;
}

export function append(el: Node, children: Child[]): void {
        for (const c of children) {
                if (c === null || c === undefined || c === false)
                        continue;
                if (Array.isArray(c))
                        append(el, c);
                else
                        el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
        }
}

export function svg(tag: string, attrs: Record<string, string | number>,
                    ...children: (SVGElement | string)[]): SVGElement {
        const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
        for (const [k, v] of Object.entries(attrs))
                el.setAttribute(k, String(v));
        for (const c of children)
                el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
        return el;
}

export function clear(el: Element): void {
        while (el.firstChild)
                el.removeChild(el.firstChild);
}

export function mib(v: number | null | undefined): string {
        if (v === null || v === undefined)
                return '—';
        if (v >= 1024)
                return `${+(v / 1024).toFixed(v >= 10240 ? 0 : 1)} GiB`;
        return `${Math.round(v)} MiB`;
}

export function pct(v: number | null | undefined): string {
        return v === null || v === undefined ? '—' : `${Math.round(v)}%`;
}

export function ago(unixSeconds: number | null | undefined): string {
        if (!unixSeconds)
                return '—';
        const s = Math.max(0, Math.round(Date.now() / 1000 - unixSeconds));
        if (s < 60)
                return `${s}s ago`;
        if (s < 3600)
                return `${Math.floor(s / 60)}m ago`;
        if (s < 86400)
                return `${Math.floor(s / 3600)}h ago`;
        return `${Math.floor(s / 86400)}d ago`;
}

// A horizontal bar: used / total, with the text on it.
export function bar(used: number | null, total: number | null, text: string,
                    cls = ''): HTMLElement {
        const frac = used !== null && total ? Math.min(1, Math.max(0, used / total)) : 0;
        const fill = h('span', { class: 'fill' });
        fill.style.width = `${(frac * 100).toFixed(1)}%`;
        return h('span', { class: `bar ${cls}`, title: text }, fill, h('span', { class: 'txt' }, text));
}

// An amount of money in its currency ("$375", "€1,234.50"); a code Intl does not know is
// written after the number.
export function money(v: number | null | undefined, currency: string | null | undefined): string {
        if (v === null || v === undefined)
                return '—';
        try {
                return new Intl.NumberFormat('en-US', { style: 'currency', currency: currency || 'USD',
                                                        minimumFractionDigits: 0,
                                                        maximumFractionDigits: 2 }).format(v);
        } catch {
                return `${v.toFixed(2)} ${currency ?? ''}`.trim();
        }
}

// Amounts in several currencies ({"USD": 375, "EUR": 20}), joined.
export function moneys(m: Record<string, number> | null | undefined): string {
        const e = Object.entries(m ?? {});
        return e.length ? e.map(([c, v]) => money(v, c)).join(' + ') : '—';
}
