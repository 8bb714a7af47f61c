// SPDX-License-Identifier: MIT
// api.ts — the controller's REST API (docs/api.md) from the browser: the bearer token from
// sessionStorage, problems (RFC 9457) turned into errors worded as the API words them, a 401
// asks for a token once and retries.

export interface Problem {
        type?: string; title?: string; status?: number; detail?: string; errno?: string;
}

export class ApiError extends Error {
        status: number;
        problem: Problem | null;
        constructor(status: number, problem: Problem | null, fallback: string) {
                super(problem?.detail || problem?.title || fallback);
                this.status = status;
                this.problem = problem;
        }
}

const TOKEN_KEY = 'gpuvirt.token';

export function token(): string | null {
        return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null): void {
        if (t)
                sessionStorage.setItem(TOKEN_KEY, t);
        else
                sessionStorage.removeItem(TOKEN_KEY);
}

// A token in the URL's fragment (#token=gvt_..., as contrib/sim-cluster.sh prints it) moves to
// sessionStorage and out of the address bar and history.
export function takeTokenFromHash(): void {
        const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
        if (!m)
                return;
        setToken(decodeURIComponent(m[1]));
        history.replaceState(null, '', `${location.pathname}#/`);
}

// Set by main.ts: asks the user for a token; resolves false when they give none.
export let askToken: (why: string) => Promise<boolean> = async () => false;
export function onAskToken(fn: (why: string) => Promise<boolean>): void {
        askToken = fn;
}

export function headers(extra?: Record<string, string>): Record<string, string> {
        const h: Record<string, string> = { Accept: 'application/json', ...extra };
        const t = token();
        if (t)
                h.Authorization = `Bearer ${t}`;
        return h;
}

let asking: Promise<boolean> | null = null;

export async function request<T = unknown>(method: string, path: string, body?: unknown,
                                           retried = false): Promise<T> {
        const init: RequestInit = { method, headers: headers(), cache: 'no-store' };
        if (body !== undefined) {
                init.body = JSON.stringify(body);
                (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
        }
        let res: Response;
        try {
                res = await fetch(path, init);
        } catch (e) {
                throw new ApiError(0, null, `The controller cannot be reached (${String(e)}).`);
        }
        const text = await res.text();
        let json: unknown = null;
        try {
                json = text ? JSON.parse(text) : null;
        } catch {
                json = null;
        }
        if (res.status === 401 && !retried) {
                const detail = (json as Problem | null)?.detail ?? 'The API needs a token.';
                asking ??= askToken(detail).finally(() => { asking = null; });
                if (await asking)
                        return request<T>(method, path, body, true);
        }
        if (!res.ok)
                throw new ApiError(res.status, json && typeof json === 'object' ? json as Problem : null,
                                   `${method} ${path}: HTTP ${res.status}`);
        return json as T;
}

export const get = <T>(path: string) => request<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body);
export const put = <T>(path: string, body?: unknown) => request<T>('PUT', path, body);
export const del = <T>(path: string) => request<T>('DELETE', path);

export const enc = encodeURIComponent;
