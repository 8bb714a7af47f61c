// SPDX-License-Identifier: MIT
// dashboard.test.mjs — the dashboard in chromium against a running simulated cluster (TAP).
//   node dashboard.test.mjs CONTROLLER_URL TOKEN SCREENSHOT_DIR PLAYWRIGHT_CORE CHROMIUM
// Opens the dashboard with the token in the URL's fragment, sees both hosts and their GPUs,
// creates a vGPU VM through the Create VM dialog, sees it running with its charts (or "no
// metrics yet"), opens its serial console (xterm.js) and its display (noVNC) over WebSockets
// through the controller (the display must show SeaBIOS's screen: a framebuffer update with more
// than one colour), sees a refused create worded as the API words it, migrates the VM to the
// other host through the Migrate dialog and sees it there; makes a priced licence pool through
// the Licences form and sees its seat bar and holders, a refused seats value in the controller's
// words; asks the advisor and opens Create VM from an option; sees a stopped pass-through VM as
// idle in the insights. Screenshots of each page.
import { join } from 'node:path';

const [url, token, shots, pwPath, chromiumPath] = process.argv.slice(2);
const { chromium } = await import(pwPath);

let n = 0;
let failed = 0;
const plan = 16;
console.log(`1..${plan}`);
function ok(cond, name, diag = '') {
        n++;
        if (cond) {
                console.log(`ok ${n} - ${name}`);
        } else {
                failed++;
                console.log(`not ok ${n} - ${name}`);
                for (const l of String(diag).split('\n'))
                        console.log(`# ${l}`);
        }
}
async function step(name, fn) {
        if (failed) { // each step builds on the one before
                n++;
                console.log(`ok ${n} - ${name} # SKIP an earlier step failed`);
                return;
        }
        try {
                const r = await fn();
                ok(r !== false, name, r === false ? 'the check was false' : '');
        } catch (e) {
                ok(false, name, e?.stack ?? String(e));
        }
}

const browser = await chromium.launch({ executablePath: chromiumPath,
                                        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
const errors = [];
page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
// The browser logs every answer >= 400 as "Failed to load resource"; the refusals this test asks
// for are checked where they are shown.
page.on('console', (m) => {
        if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
                errors.push(`console: ${m.text()}`);
});
const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const T = { timeout: 20000 };

try {
        await step('the dashboard opens with the token from the URL, which leaves the address bar', async () => {
                await page.goto(`${url}/#token=${token}`); // "/" redirects to /ui/, the fragment goes along
                await page.waitForSelector('tr[data-host="node-b"]', T);
                const hash = await page.evaluate(() => location.hash);
                const path = await page.evaluate(() => location.pathname);
                const kept = await page.evaluate(() => sessionStorage.getItem('gpuvirt.token'));
                if (hash.includes('token') || path !== '/ui/' || kept !== token)
                        throw new Error(`hash '${hash}', path '${path}', token kept: ${kept === token}`);
        });
        await step('the overview shows both hosts up, their 16 GPUs and the event stream live', async () => {
                await page.waitForSelector('#conn.live', T);
                await page.waitForFunction(() => document.querySelectorAll('tr[data-gpu]').length === 16, null, T);
                const states = await page.$$eval('tr[data-host] .badge', (b) => b.map((x) => x.textContent));
                await shot('overview');
                if (states.join() !== 'up,up')
                        throw new Error(`host states: ${states}`);
        });
        await step('a host page draws its 8 GPUs with their modes', async () => {
                await page.click('a[href="#/hosts/node-a"]');
                await page.waitForFunction(() => document.querySelectorAll('tr[data-gpu]').length === 8, null, T);
                const modes = await page.$$eval('tr[data-gpu] .mode', (m) => m.map((x) => x.textContent));
                await shot('host');
                if (!modes.every((m) => ['vgpu', 'mig', 'passthrough', 'none'].includes(m)))
                        throw new Error(`modes: ${modes}`);
        });
        await step('Create VM shows where a vGPU type would fit and creates the VM', async () => {
                await page.click('#create-vm');
                await page.fill('dialog input[name=name]', 'web-1');
                await page.fill('dialog input[name=memory_mib]', '128');
                await page.selectOption('dialog select[name=gpu-kind]', 'vgpu');
                await page.waitForSelector('dialog select[name=gpu-what] option[value="H100XM-20C"]',
                                           { ...T, state: 'attached' });
                await page.selectOption('dialog select[name=gpu-what]', 'H100XM-20C');
                await page.selectOption('dialog select[name=host]', 'node-a');
                const fits = await page.textContent('dialog .fits-box');
                // the placement engine's own answer for this spec (POST /api/v1/placements)
                await page.waitForFunction(() => /^node-a\/\d+ H100XM-20C/.test(
                        document.querySelector('dialog .engine-answer')?.textContent ?? ''), null, T);
                await shot('create-dialog');
                if (!/Would fit now: .*node-a\/\d/.test(fits))
                        throw new Error(`fits: ${fits}`);
                await page.click('dialog button[type=submit]');
                await page.waitForFunction(() => location.hash === '#/vms/web-1', null, T);
        });
        await step('the VM runs on node-a, with CPU, memory and GPU charts side by side', async () => {
                await page.waitForFunction(() => document.querySelector('.pagehead .badge')?.textContent === 'running',
                                           null, { timeout: 60000 });
                const host = await page.textContent('.vm-host');
                // each chart draws (a canvas) or says why not ("no metrics yet ...", "no samples yet")
                await page.waitForFunction(() => {
                        const c = [...document.querySelectorAll('figure.chart')];
                        return c.length === 4 && c.every((f) => f.querySelector('canvas') ||
                                /no metrics yet|no samples/.test(f.textContent));
                }, null, { timeout: 30000 });
                // drawn once the controller has collected the VM (every second), unless this
                // controller has no metrics route at all
                await page.waitForFunction(() => document.querySelector('figure[data-chart="CPU"] canvas') ||
                        /There is no resource/.test(document.querySelector('figure[data-chart="CPU"]').textContent),
                null, { timeout: 20000 });
                const charts = await page.$$eval('figure.chart', (f) => f.map((x) =>
                        `${x.dataset.chart}: ${x.querySelector('canvas') ? 'drawn' : x.textContent}`));
                await shot('vm');
                console.log(`# charts: ${charts.join(' | ')}`);
                if (host !== 'node-a')
                        throw new Error(`host '${host}'`);
        });
        await step('the Console tab connects the serial console (xterm.js over a WebSocket)', async () => {
                await page.click('button[data-tab="console"]');
                await page.waitForSelector('.console-panel[data-console="serial"][data-state="open"]', T);
                await page.waitForSelector('.console-panel[data-console="serial"] .xterm', T);
                await shot('vm-console');
        });
        await step('the Display tab shows the VM\'s screen (noVNC, a framebuffer from SeaBIOS)', async () => {
                await page.click('button[data-tab="display"]');
                await page.waitForSelector('.console-panel[data-console="display"][data-state="open"]', T);
                // More than one colour on the canvas: text drawn on the VGA screen.
                await page.waitForFunction(() => {
                        const c = document.querySelector('.console-screen.display canvas');
                        if (!c || !c.width || !c.height)
                                return false;
                        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                        const seen = new Set();
                        for (let i = 0; i < d.length && seen.size < 3; i += 4 * 7)
                                seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
                        return seen.size >= 2;
                }, null, { timeout: 30000 });
                const size = await page.$eval('.console-screen.display canvas', (c) => `${c.width}x${c.height}`);
                console.log(`# display: ${size}`);
                await shot('vm-display');
                // Back to the overview: the display's socket closes with its tab.
                await page.click('button[data-tab="overview"]');
                await page.waitForSelector('.console-panel[data-console="display"][data-state="closed"]',
                                           { ...T, state: 'attached' });
        });
        await step('a refused create shows the API\'s own words in the dialog', async () => {
                await page.click('#create-vm');
                await page.fill('dialog input[name=name]', 'web-1');
                await page.click('dialog button[type=submit]');
                await page.waitForSelector('dialog .err:not([hidden])', T);
                const msg = await page.textContent('dialog .err');
                const api = await page.evaluate(async (tok) => {
                        const r = await fetch('/api/v1/vms', { method: 'POST', headers: {
                                Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' },
                                body: JSON.stringify({ name: 'web-1', vcpus: 1, memory_mib: 128 }) });
                        return (await r.json()).detail;
                }, token);
                await shot('create-refused');
                await page.click('dialog button.x');
                if (!api || msg !== api)
                        throw new Error(`dialog '${msg}', API '${api}'`);
        });
        await step('Migrate moves the VM live to node-b', async () => {
                await page.click('.pagehead button[data-action="migrate…"]');
                await page.selectOption('dialog select[name=to]', 'node-b');
                await page.selectOption('dialog select[name=mode]', 'live');
                await page.click('dialog button[type=submit]');
                await page.waitForFunction(() => document.querySelector('.vm-host')?.textContent === 'node-b' &&
                                           document.querySelector('.pagehead .badge')?.textContent === 'running',
                                           null, { timeout: 90000 });
                await shot('vm-migrated');
        });
        await step('the operations page shows the create and the migration succeeded', async () => {
                await page.click('a[data-nav="ops"]');
                await page.waitForSelector('tr[data-op]', T);
                const rows = await page.$$eval('tr[data-op]', (r) => r.map((x) => x.textContent));
                await shot('operations');
                const mig = rows.find((r) => r.includes('vm.migrate') && r.includes('web-1'));
                const create = rows.find((r) => r.includes('vm.create') && r.includes('web-1'));
                if (!mig?.includes('succeeded') || !create?.includes('succeeded'))
                        throw new Error(`rows:\n${rows.join('\n')}`);
        });
        await step('a GPU set to MIG mode and given a layout through its dialogs, drawn as asked', async () => {
                await page.goto(`${url}/ui/#/hosts/node-a`);
                const row = 'tr[data-gpu="node-a/7"]';
                await page.waitForSelector(row, T);
                await page.click(`${row} button:has-text("Mode…")`);
                await page.selectOption('dialog select[name=mode]', 'mig');
                await page.click('dialog button[type=submit]');
                await page.waitForFunction((r) => document.querySelector(`${r} .mode`)?.textContent === 'mig', row, { timeout: 60000 });
                await page.click(`${row} button[data-action="mig-layout"]`);
                await page.fill('dialog input[name="count-3g.40gb"]', '2');
                const verdict = await page.textContent('dialog .layout-verdict');
                if (!/^2 instance\(s\): 3g\.40gb@\d, 3g\.40gb@\d$/.test(verdict))
                        throw new Error(`preview: ${verdict}`);
                await page.click('dialog button[type=submit]');
                await page.waitForFunction((r) => [...document.querySelectorAll(`${r} .gi b`)]
                        .filter((b) => b.textContent === '3g.40gb').length === 2, row, { timeout: 60000 });
                await shot('mig-layout');
        });
        await step('Licences: a priced pool made through its form shows its seat bar, its cost and web-1 among its holders', async () => {
                await page.click('a[data-nav="licenses"]');
                await page.waitForSelector('table.pools tbody tr', T);
                await page.click('button[data-action="new-pool"]');
                await page.fill('dialog input[name=pool]', 'ai');
                await page.selectOption('dialog select[name=edition]', 'nvaie');
                await page.fill('dialog input[name=seats]', '1');
                await page.selectOption('dialog select[name=policy]', 'warn');
                await page.fill('dialog input[name=term-start]', '2020-01-01');
                await page.fill('dialog input[name=term-end]', '2099-12-31');
                await page.fill('dialog input[name=price]', '4500');
                await page.click('dialog button[type=submit]');
                // web-1 (H100XM-20C, series C) holds a seat of NVIDIA AI Enterprise: 4500 / 12 a month
                const row = 'tr[data-pool="ai"]';
                await page.waitForFunction((r) => document.querySelector(`${r} .bar .txt`)?.textContent === '1 / 1', row, T);
                const cost = await page.textContent(`${row} td.cost`);
                await page.click(`${row} td.term`); // the row opens on a click
                const holder = 'tr[data-holders="ai"] tr[data-holder="web-1"]';
                await page.waitForSelector(holder, T);
                const cells = await page.$$eval(`${holder} td`, (t) => t.map((x) => x.textContent));
                const byVm = await page.textContent('tr[data-cost-vm="web-1"]');
                await shot('licenses');
                // VM, tenant, host, state, seats, over, since, cost
                if (cost !== '$375' || cells[1] !== 'default' || cells[2] !== 'node-b' || cells[3] !== 'running' ||
                    cells[4] !== '1' || cells[5] !== 'no' || cells[7] !== '$375' || !byVm.includes('$375'))
                        throw new Error(`cost '${cost}', holder ${JSON.stringify(cells)}, by VM '${byVm}'`);
        });
        await step('a bad seats value shows the controller\'s words by the form; 0 seats shows web-1 over in the warning colour', async () => {
                await page.click('tr[data-pool="ai"] button[data-action="edit-pool"]');
                await page.fill('dialog input[name=seats]', '-1');
                await page.click('dialog button[type=submit]');
                await page.waitForSelector('dialog .err:not([hidden])', T);
                const msg = await page.textContent('dialog .err');
                const api = await page.evaluate(async (tok) => {
                        const r = await fetch('/api/v1/licenses/ai', { method: 'PUT', headers: {
                                Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' },
                                body: JSON.stringify({ edition: 'nvaie', seats: -1 }) });
                        return `${r.status} ${(await r.json()).detail}`;
                }, token);
                await shot('license-refused');
                if (!api.startsWith('400 ') || msg !== api.slice(4))
                        throw new Error(`form '${msg}', API '${api}'`);
                await page.fill('dialog input[name=seats]', '0');
                await page.click('dialog button[type=submit]');
                await page.waitForSelector('tr[data-pool="ai"].over .bar.over', T);
                const bar = await page.textContent('tr[data-pool="ai"] .bar .txt');
                await page.waitForSelector('tr[data-holders="ai"] tr[data-holder="web-1"].over', T);
                if (bar !== '1 / 0 (1 over)')
                        throw new Error(`bar '${bar}'`);
        });
        await step('the advisor ranks options for a workload and Create VM… opens the dialog with an option\'s GPU', async () => {
                await page.click('a[data-nav="advisor"]');
                await page.selectOption('select[name=kind]', 'inference');
                await page.fill('input[name=gpu_memory_mib]', '20000');
                await page.fill('input[name=users]', '2');
                await page.check('input[name=live_migration]');
                await page.click('form.traits button[type=submit]');
                await page.waitForSelector('tr[data-option]', T);
                const opts = await page.$$eval('tr[data-option]', (r) => r.map((x) => ({
                        rank: x.dataset.option, mode: x.dataset.mode, request: JSON.parse(x.dataset.request),
                        where: x.querySelector('td.where').textContent, cost: x.querySelector('td.licence').textContent })));
                // live migration rules pass-through out, with its rule
                const ruled = await page.$$eval('details.excluded tr[data-excluded]', (r) => r.map((x) => x.dataset.excluded));
                const vgpu = opts.find((o) => o.mode === 'vgpu');
                await shot('advisor');
                if (opts.map((o) => o.rank).join() !== opts.map((_, i) => i + 1).join() || !vgpu ||
                    opts.some((o) => o.mode === 'passthrough') || !ruled.includes('live-migration') ||
                    !/^node-[ab] GPU/.test(opts[0].where))
                        throw new Error(`options ${JSON.stringify(opts)}, ruled out ${ruled}`);
                // two instances of a 20 GiB C-series type: 2 seats of the ai pool at 4500 a year
                if (!vgpu.cost.includes('$9,000/yr') || vgpu.request.kind !== 'vgpu')
                        throw new Error(`vGPU option ${JSON.stringify(vgpu)}`);
                await page.click(`tr[data-option="${vgpu.rank}"] button[data-action="create-from-option"]`);
                await page.waitForFunction((t) => document.querySelector('dialog select[name=gpu-what]')?.value === t,
                                           vgpu.request.type, T);
                const kind = await page.$eval('dialog select[name=gpu-kind]', (x) => x.value);
                const note = await page.textContent('dialog .prefill-note');
                await shot('advisor-create');
                await page.click('dialog button.x');
                if (kind !== 'vgpu' || !note.includes(`option ${vgpu.rank}`))
                        throw new Error(`kind '${kind}', note '${note}'`);
        });
        await step('the insights view lists a stopped pass-through VM as idle with evidence vm-stopped', async () => {
                // pt-1 takes a free GPU whole, then stops: its placement keeps the GPU
                const st = await page.evaluate(async (tok) => {
                        const api = async (method, path, body) => {
                                const r = await fetch(path, { method, headers: { Authorization: `Bearer ${tok}`,
                                        'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
                                return r.json();
                        };
                        const until = async (want) => {
                                for (let i = 0; i < 120; i++) {
                                        const v = await api('GET', '/api/v1/vms/pt-1');
                                        if (v.state === want || v.state === 'failed')
                                                return v.state;
                                        await new Promise((r) => setTimeout(r, 250));
                                }
                                return 'timeout';
                        };
                        await api('POST', '/api/v1/vms', { name: 'pt-1', vcpus: 1, memory_mib: 128,
                                                          gpus: [{ kind: 'passthrough', count: 1 }] });
                        const up = await until('running');
                        await api('POST', '/api/v1/vms/pt-1/stop', { timeout_s: 1 });
                        return `${up} ${await until('stopped')}`;
                }, token);
                if (st !== 'running stopped')
                        throw new Error(`pt-1: ${st}`);
                await page.click('a[data-nav="insights"]');
                await page.selectOption('select[name=window]', '15m');
                const row = 'tr[data-idle-gpu][data-vm="pt-1"]';
                await page.waitForSelector(`${row} [data-evidence="vm-stopped"]`, T);
                await page.waitForFunction(() => /over 15m, under 5%/.test(document.querySelector('.stamp')?.textContent), null, T);
                const text = await page.textContent(row);
                const blind = await page.textContent('section');
                // node-a/7's two 3g.40gb instances (the MIG layout step) drawn as they are
                const drawn = await page.$$eval('.frag[data-frag="node-a/7"] .layout-now .gi b', (b) => b.map((x) => x.textContent));
                await shot('insights');
                if (!/stopped/.test(text) || !text.includes('1 GPU') || !/MIG: \d+ × /.test(text) || !/vGPU: \d+ × /.test(text) ||
                    !blind.includes('GPU utilization cannot be read on a passed-through GPU') || drawn.join() !== '3g.40gb,3g.40gb')
                        throw new Error(`row '${text}', node-a/7 drawn ${drawn}`);
        });
        await step('no page errors', async () => {
                if (errors.length)
                        throw new Error(errors.join('\n'));
        });
} finally {
        await browser.close();
}
if (n !== plan)
        console.log(`# ran ${n} of ${plan}`);
process.exit(failed || n !== plan ? 1 : 0);
