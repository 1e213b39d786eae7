// The signed-in session: the access token in memory only, the refresh token kept for this tab
// (sessionStorage) or, on a store's own tablet, for the device (localStorage, chosen at sign-in) so
// that it survives a restart (docs/FRONTEND.md, "Tokens in the browser"); renewed a minute early.

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

/** Where the session is kept: the device's storage once it was chosen to be kept, else the tab's. */
function storage(): Storage {
  return localStorage.getItem(KEPT) !== null ? localStorage : sessionStorage;
}

/** Starts a session; `keepDevice` keeps it past this tab (a store's own tablet). */
export function begin(config: Config, tokens: Tokens, storeId: string | null, keepDevice?: boolean): void {
  if (keepDevice !== undefined) {
    // A new sign-in chooses afresh: nothing of an earlier session stays in the other storage.
    localStorage.removeItem(KEPT);
    sessionStorage.removeItem(KEPT);
    (keepDevice ? localStorage : sessionStorage).setItem(KEPT, "{}");
  }
  accessToken.value = tokens.accessToken;
  store.value = storeId;
  keep({ refreshToken: tokens.refreshToken, store: storeId });
  clearTimeout(timer);
  const renewIn = Math.max(5, tokens.expiresIn - 60) * 1000;
  timer = setTimeout(() => void resume(config), renewIn);
}

function keep(kept: Kept): void {
  storage().setItem(KEPT, JSON.stringify(kept));
}

/** The store this device runs from now on (null: pick again). */
export function pick(storeId: string | null): void {
  const raw = storage().getItem(KEPT);
  if (raw) keep({ ...(JSON.parse(raw) as Kept), store: storeId });
  store.value = storeId;
}

/** Renews the session from the kept refresh token; false when there is none or it was refused. */
export async function resume(config: Config): Promise<boolean> {
  const raw = storage().getItem(KEPT);
  if (!raw) return false;
  const kept = JSON.parse(raw) as Kept;
  if (!kept.refreshToken) return false;
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
  sessionStorage.removeItem(KEPT);
  accessToken.value = null;
  store.value = null;
}
