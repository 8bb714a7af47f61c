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
