// The signed-in session: the access token in memory only, the refresh token kept so that a store's
// tablet survives a reload (docs/FRONTEND.md, "Tokens in the browser"), renewed a minute early.

import { computed, signal } from "@preact/signals";
import { ApiError, type Config, refresh, type Tokens } from "./api";

const KEPT = "ordersync.session";

interface Kept {
  refreshToken: string;
  /** The store this device runs, once picked. */
  store: string | null;
}

export const accessToken = signal<string | null>(null);
export const store = signal<string | null>(null);

/** The account's role, as its access token says (what to show; the API decides what is allowed). */
export const role = computed(() => {
  const payload = accessToken.value?.split(".")[1];
  if (!payload) return null;
  try {
    return (JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as { role?: string }).role ?? null;
  } catch {
    return null;
  }
});

let timer: ReturnType<typeof setTimeout> | undefined;

export function begin(config: Config, tokens: Tokens, storeId: string | null): void {
  accessToken.value = tokens.accessToken;
  store.value = storeId;
  keep({ refreshToken: tokens.refreshToken, store: storeId });
  clearTimeout(timer);
  const renewIn = Math.max(5, tokens.expiresIn - 60) * 1000;
  timer = setTimeout(() => void resume(config), renewIn);
}

function keep(kept: Kept): void {
  localStorage.setItem(KEPT, JSON.stringify(kept));
}

/** The store this device runs from now on (null: pick again). */
export function pick(storeId: string | null): void {
  const raw = localStorage.getItem(KEPT);
  if (raw) keep({ ...(JSON.parse(raw) as Kept), store: storeId });
  store.value = storeId;
}

/** Renews the session from the kept refresh token; false when there is none or it was refused. */
export async function resume(config: Config): Promise<boolean> {
  const raw = localStorage.getItem(KEPT);
  if (!raw) return false;
  const kept = JSON.parse(raw) as Kept;
  try {
    begin(config, await refresh(config, kept.refreshToken), kept.store);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 0) {
      // Offline: not signed out; try again shortly.
      clearTimeout(timer);
      timer = setTimeout(() => void resume(config), 10_000);
    } else {
      end();
    }
    return false;
  }
}

export function end(): void {
  clearTimeout(timer);
  localStorage.removeItem(KEPT);
  accessToken.value = null;
  store.value = null;
}
