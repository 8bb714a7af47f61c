// SPDX-License-Identifier: MIT
// charts.ts — time-series charts (uPlot) over a metrics history (metrics.ts): one chart per
// figure (CPU, memory, GPU), set side by side on one time axis by the caller. A chart with no
// data says why instead of drawing zeros ("no metrics yet", "not reported by this GPU").
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h } from './dom';
import type { Series } from './metrics';

export interface Line { col: string; label: string; color: string; fill?: boolean }

export interface Chart {
        el: HTMLElement;
        // lines: the columns to draw (they may change, e.g. a VM's GPU slots); why: shown when
        // there is nothing to draw.
        update(s: Series | null, lines: Line[], why: string): void;
        destroy(): void;
}

export const PALETTE = ['#3ecf8e', '#f5a623', '#5b9bff', '#ff7ab6', '#b07cff', '#4fd1c5', '#e5e07a', '#ff8a5c'];

export function chart(title: string, unit: string, yMax?: number): Chart {
        const plotEl = h('div', { class: 'plot' });
        const note = h('div', { class: 'chart-note muted' });
        const now = h('span', { class: 'chart-now' });
        const el = h('figure', { class: 'chart empty', 'data-chart': title },
                     h('figcaption', null, h('b', null, title), ' ', now), plotEl, note);
        let plot: uPlot | null = null;
        let shape = '';
        let ro: ResizeObserver | null = null;

        const fmt = (v: number | null) => v === null ? '—'
                : unit === '%' ? `${v >= 100 ? Math.round(v) : v.toFixed(1)}%` : `${Math.round(v)} ${unit}`;

        function make(lines: Line[], data: uPlot.AlignedData): void {
                plot?.destroy();
                ro?.disconnect();
                const axis = { stroke: '#8a94a6', grid: { stroke: '#2a3140', width: 1 }, ticks: { stroke: '#2a3140' },
                               font: '10px system-ui' };
                plot = new uPlot({
                        width: Math.max(200, plotEl.clientWidth || 300), height: 150,
                        legend: { show: false },
                        cursor: { drag: { x: false, y: false } },
                        scales: { x: { time: true },
                                  y: { range: (_u, _min, max) => [0, yMax && max <= yMax ? yMax : Math.max(1, (max || 0) * 1.1)] } },
                        axes: [axis, { ...axis, size: 48, values: (_u, vals) => vals.map((v) => `${v}${unit === '%' ? '%' : ''}`) }],
                        series: [{}, ...lines.map((l) => ({
                                label: l.label, stroke: l.color, width: 1.5, spanGaps: false,
                                fill: l.fill ? `${l.color}30` : undefined, points: { show: false },
                        }))],
                }, data, plotEl);
                ro = new ResizeObserver(() => {
                        if (plot && plotEl.clientWidth)
                                plot.setSize({ width: plotEl.clientWidth, height: 150 });
                });
                ro.observe(plotEl);
        }

        return {
                el,
                update(s, lines, why) {
                        const cols = lines.map((l) => s?.cols[l.col] ?? []);
                        const has = !!s && s.t.length > 0 && cols.some((c) => c.some((v) => v !== null));
                        note.textContent = has ? '' : why;
                        el.classList.toggle('empty', !has);
                        now.textContent = has ? lines.map((l, i) => `${l.label} ${fmt(cols[i][cols[i].length - 1] ?? null)}`).join(' · ') : '';
                        if (!has)
                                return;
                        const data = [s!.t, ...cols.map((c) => c.slice(0, s!.t.length))] as uPlot.AlignedData;
                        const sh = lines.map((l) => l.col).join();
                        if (!plot || sh !== shape) {
                                shape = sh;
                                make(lines, data);
                        } else {
                                plot.setData(data);
                        }
                },
                destroy() {
                        ro?.disconnect();
                        plot?.destroy();
                        plot = null;
                },
        };
}
