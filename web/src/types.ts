// SPDX-License-Identifier: MIT
// types.ts — the API's objects as the dashboard reads them (docs/api.md); members it does not
// use are left out.

export interface Host {
        name: string; state: string; endpoint?: string; last_seen?: number; accel?: string;
        accel_reason?: string; simulated?: boolean; cpus?: number; memory_mib?: number;
        models?: Record<string, number>; gpus?: number | Gpu[];
}

export interface Use { vm: string; alloc: string; name: string | null; start: number | null }

export interface GpuInstance {
        id: number; profile: string; size: number; start: number; memory_mib?: number;
        vgpu?: string | null;
}

export interface VgpuInstance {
        uuid: string; type: string; framebuffer_mib: number; gpu_instance: number | null;
        vm?: string | null;
}

export interface Gpu {
        name: string; host: string; index: number; pci: string; model: string; mode: string;
        memory_mib: number | null; memory_used_mib: number | null; util_pct: number | null;
        use: Use[];
        mig?: { capable: boolean; enabled: boolean; memory_slices?: number;
                gpu_instances?: GpuInstance[]; error?: string | null };
        vgpu?: { capable: boolean; heterogeneous?: boolean; instances?: VgpuInstance[] };
}

export interface VgpuType {
        name: string; framebuffer_mib: number; max_instances: number; gi_profile: string | null;
        series?: string;
}

export interface PlacedGpu {
        gpu: string; index: number; pci: string; alloc: string; name: string | null;
        start?: number; vgpu_type?: string;
}

export interface Vm {
        name: string; uuid?: string; state: string; host: string | null;
        spec: { vcpus?: number; memory_mib?: number; image?: string;
                gpus?: Record<string, unknown>[] };
        placement: { host: string; policy?: string; gpus: PlacedGpu[] } | null;
        migration?: { host: string; mode: string; state: string } | null;
        created_at?: number; error?: unknown;
}

export interface Operation {
        id: string; kind: string; target: string; state: string; progress: number | null;
        message: string | null; created_at: number; updated_at: number; result: unknown;
        error: { detail?: string; title?: string } | null;
}

export interface Image { name: string; format?: string; virtual_size?: number }

export interface ClusterEvent {
        seq: number; type: string; subject: string; time: number;
        data: Record<string, unknown> | null;
}

// GET /api/v1/licenses (docs/licensing.md). Costs are per month, in the pool's currency.
export interface LicenseHolder {
        vm: string; tenant: string; host: string | null; gpus?: string[]; state: string;
        since?: number | null; seats: number; over: boolean; cost_per_month: number | null;
}

export interface LicensePool {
        name: string; edition: string; seats: number; policy: string; counting: string;
        passthrough: boolean; mig: boolean; term: { start: string; end: string } | null;
        price_per_seat_year: number | null; currency: string;
        used: number; free: number; over: number; active: boolean;
        inactive_reason: string | null; cost_per_month: number | null;
        holders: LicenseHolder[];
}

export type Money = Record<string, number>; // currency → amount

export interface Licenses {
        pools: LicensePool[];
        unlicensed: { vm: string; tenant: string; host: string | null; state: string;
                      needs: string[] }[];
        cost: { per_month: Money; by_tenant: Record<string, Money>; by_vm: Record<string, Money> };
}

// POST /api/v1/advise (docs/advisor.md).
export interface AdviseLicense {
        edition: string | null; edition_title?: string; seats: number; counting: string | null;
        cost_per_year: number | null; price_per_seat_year: number | null;
        currency: string | null; seats_free?: number; note: string | null;
}

export interface AdviseOption {
        rank: number; mode: string; model: string; profile: string | null;
        vgpu_type: string | null; instances: number; per_gpu?: number; gpus: number;
        memory_mib?: number; isolation?: string; predictability?: string;
        live_migration?: boolean; license: AdviseLicense; as_vgpu?: AdviseLicense;
        score: number; reasons: string[]; fit: string;
        where: { fits: boolean; text: string; reason: string | null; mode_change?: boolean;
                 gpus?: { gpu: string; instances: number; mode: string; mode_change: boolean }[] }
                | null;
        request?: Record<string, unknown>;
}

export interface Advice {
        traits: Record<string, unknown>;
        options: AdviseOption[];
        excluded: { mode: string; model: string | null; rule: string; reason: string;
                    source?: string }[];
        none: string | null;
}

// GET /api/v1/insights (src/controller/controller.h, gv_controller_insights).
export interface Measured {
        evidence: string; proxy: boolean; value: number | null; peak: number | null;
        samples: number; since: number | null; // ms
}

export interface IdlePassthrough extends Measured {
        host: string; gpu: string; name: string; model: string; vm: string; state: string;
        gpu_util: string;
        frees: { gpus: number; memory_mib: number | null };
        convert: ({ mode: 'mig'; profile: string; memory_mib: number; instances: number;
                    layout: string; licence: string; cost_per_year?: number | null;
                    cost_reason?: string | null; currency?: string } |
                  { mode: 'vgpu'; type: string; series: string; framebuffer_mib: number;
                    instances: number; edition: string; edition_title: string;
                    counting: string; seats: number; seats_free: number;
                    cost_per_year: number | null; currency: string;
                    cost_reason: string | null })[];
}

export interface MigMove {
        vm: string | null; profile: string; from: number; to: number; from_slices: string;
        to_slices: string; step: number; direct: boolean; park_before: number | null;
        needs_live_migration: boolean;
}

export interface Fragmentation {
        host: string; gpu: string; name: string; model: string;
        instances: { vm: string | null; profile: string; start: number; held_by: string }[];
        layout: string; measure: number | null; free_slices?: number;
        largest_free_run?: number; largest_free_profile?: string | null; verdict: string;
        why: string;
        plan: { moves: MigMove[]; frees_profile: string; largest_free_run: number;
                live_migrations: number; layout: string } | null;
}

export interface IdleSeat extends Measured {
        pool: string; edition: string; vm: string; host: string | null; state: string;
        seats: number; cost_per_month: number | null;
}

export interface Insights {
        window: string; window_ms: number; threshold: number; generated_ms: number;
        evidence: Record<string, string>;
        idle_passthrough: IdlePassthrough[];
        fragmentation: Fragmentation[];
        idle_seats: IdleSeat[];
}
