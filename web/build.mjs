// SPDX-License-Identifier: MIT
// build.mjs — bundle the dashboard into dist/ (docs/dashboard.md): src/main.ts and its CSS
// (uPlot's included) into dist/assets/ with content hashes in their names, and
// dist/index.html pointing at them. The MIG geometry of every GPU model comes from the
// catalog (../data/gpus/*.json) as the virtual module "virtual:catalog", so the page and the
// controller read the same facts. `node build.mjs --watch` rebuilds on change.
import * as esbuild from 'esbuild';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// GPUVIRT_WEB_OUT: another output directory (the browser test builds into its own).
const dist = process.env.GPUVIRT_WEB_OUT || join(here, 'dist');
const catalogDir = join(here, '..', 'data', 'gpus');
const watch = process.argv.includes('--watch');

// { model: { memory_slices, profiles: [{ name, memory_slices, memory_mib, placements }] } }
function catalog() {
        const out = {};
        for (const f of readdirSync(catalogDir).filter((f) => f.endsWith('.json')).sort()) {
                const g = JSON.parse(readFileSync(join(catalogDir, f), 'utf8'));
                const name = g.name ?? g.model ?? basename(f, '.json');
                const mig = g.mig;
                if (!mig || !Array.isArray(mig.gi_profiles))
                        continue;
                out[name] = {
                        memory_slices: mig.memory_slices,
                        profiles: mig.gi_profiles.map((p) => ({
                                name: p.name,
                                memory_slices: p.memory_slices,
                                memory_mib: p.memory_mib,
                                placements: p.placements ?? [],
                        })),
                };
        }
        return out;
}

const catalogPlugin = {
        name: 'catalog',
        setup(b) {
                b.onResolve({ filter: /^virtual:catalog$/ }, () => ({
                        path: 'catalog', namespace: 'catalog',
                }));
                b.onLoad({ filter: /.*/, namespace: 'catalog' }, () => ({
                        contents: JSON.stringify(catalog()),
                        loader: 'json',
                        watchFiles: readdirSync(catalogDir).map((f) => join(catalogDir, f)),
                }));
        },
};

// index.html from src/index.html with the hashed names of the bundle.
const htmlPlugin = {
        name: 'html',
        setup(b) {
                b.onEnd((result) => {
                        if (result.errors.length)
                                return;
                        const outs = Object.keys(result.metafile.outputs).map((o) =>
                                relative(dist, join(here, o)));
                        const js = outs.find((o) => /^assets\/app-[^/]*\.js$/.test(o));
                        const css = outs.find((o) => /^assets\/app-[^/]*\.css$/.test(o));
                        let html = readFileSync(join(here, 'src', 'index.html'), 'utf8');
                        html = html.replace('%APP_JS%', js).replace('%APP_CSS%', css);
                        writeFileSync(join(dist, 'index.html'), html);
                        // Bundles of earlier builds go, so dist/ holds one version.
                        for (const f of readdirSync(join(dist, 'assets')))
                                if (!outs.includes(`assets/${f}`))
                                        rmSync(join(dist, 'assets', f));
                        if (!watch) {
                                const size = (o) => readFileSync(join(dist, o)).length;
                                console.log(`web: ${dist}: ${js} ${size(js)} B, ${css} ` +
                                            `${size(css)} B, index.html`);
                        }
                });
        },
};

if (existsSync(dist))
        rmSync(dist, { recursive: true });
mkdirSync(join(dist, 'assets'), { recursive: true });

const options = {
        absWorkingDir: here,
        entryPoints: { app: 'src/main.ts' },
        bundle: true,
        minify: true,
        sourcemap: false,
        format: 'esm',
        // xterm.js and noVNC load when a VM's Console or Display tab first opens (consoles.ts):
        // their own chunks, not the first load.
        splitting: true,
        chunkNames: 'chunk-[hash]',
        target: ['chrome100', 'firefox100', 'safari15'],
        outdir: join(dist, 'assets'),
        entryNames: '[name]-[hash]',
        metafile: true,
        logLevel: 'warning',
        legalComments: 'linked',
        plugins: [catalogPlugin, htmlPlugin],
};

if (watch) {
        const ctx = await esbuild.context(options);
        await ctx.watch();
        console.log('web: watching src/ (dist/ rebuilt on change)');
} else {
        await esbuild.build(options);
}
