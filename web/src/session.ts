// The signed-in session: the access token in memory only, the refresh token kept for this tab
// (sessionStorage) or, on a store's own tablet, for the device (localStorage, chosen at sign-in) so
// that it survives a restart (docs/FRONTEND.md, "Tokens in the browser"); renewed a minute early.

import { signal } from "@preact/signals";
import { ApiError, type Config, type MyStore, refresh, type Tokens } from "./api";

const KEPT = "ordersync.session";

/** The store a device runs and the user's place there. */
export type Picked = Pick<MyStore, "storeId" | "place">;

interface Kept {
  refreshToken: string;
  /** The store this device runs, once picked. */
  store: string | null;
  /** The user's place at it (a session kept without one picks again). */
  place?: MyStore["place"];
}

export const accessToken = signal<string | null>(null);
export const store = signal<string | null>(null);
/** The user's place at the picked store, as `/v1/me/stores` said: the owner's tools show by it (what
 * to show; the API decides what is allowed). */
export const place = signal<MyStore["place"] | null>(null);

let timer: ReturnType<typeof setTimeout> | undefined;

/** Where the session is kept: the device's storage once it was chosen to be kept, else the tab's. */
function storage(): Storage {
  return localStorage.getItem(KEPT) !== null ? localStorage : sessionStorage;
}

/** Starts a session; `keepDevice` keeps it past this tab (a store's own tablet). */
export function begin(config: Config, tokens: Tokens, picked: Picked | null, keepDevice?: boolean): void {
  if (keepDevice !== undefined) {
    // A new sign-in chooses afresh: nothing of an earlier session stays in the other storage.
    localStorage.removeItem(KEPT);
    sessionStorage.removeItem(KEPT);
    (keepDevice ? localStorage : sessionStorage).setItem(KEPT, "{}");
  }
  accessToken.value = tokens.accessToken;
  store.value = picked?.storeId ?? null;
  place.value = picked?.place ?? null;
  keep({ refreshToken: tokens.refreshToken, store: store.value, place: picked?.place });
  clearTimeout(timer);
  const renewIn = Math.max(5, tokens.expiresIn - 60) * 1000;
  timer = setTimeout(() => void resume(config), renewIn);
}

function keep(kept: Kept): void {
  storage().setItem(KEPT, JSON.stringify(kept));
}

/** The store this device runs from now on (null: pick again). */
export function pick(picked: Picked | null): void {
  const raw = storage().getItem(KEPT);
  if (raw) keep({ ...(JSON.parse(raw) as Kept), store: picked?.storeId ?? null, place: picked?.place });
  store.value = picked?.storeId ?? null;
  place.value = picked?.place ?? null;
}

/** Renews the session from the kept refresh token; false when there is none or it was refused. */
export async function resume(config: Config): Promise<boolean> {
  const raw = storage().getItem(KEPT);
  if (!raw) return false;
  const kept = JSON.parse(raw) as Kept;
  if (!kept.refreshToken) return false;
  try {
    const picked = kept.store && kept.place ? { storeId: kept.store, place: kept.place } : null;
    begin(config, await refresh(config, kept.refreshToken), picked);
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
  place.value = null;
}
