// SPDX-License-Identifier: MIT
// The MIG geometry of the GPU catalog (data/gpus/*.json), made by build.mjs.
declare module 'virtual:catalog' {
        const catalog: Record<string, {
                memory_slices: number;
                profiles: { name: string; memory_slices: number; memory_mib: number;
                            placements: number[] }[];
        }>;
        export default catalog;
}
