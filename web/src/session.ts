// The signed-in session: the access token in memory only, the refresh token kept for this tab
// (sessionStorage) or, on a store's own tablet, for the device (IndexedDB, chosen at sign-in) so
// that it survives a restart (docs/FRONTEND.md, "Tokens in the browser"); renewed a minute early.
// The tabs of a device's session take turns to renew it: each renewal spends the refresh token, and
// the API ends a session whose spent token comes back. IndexedDB, not localStorage, because a tab
// must read the token the last tab left: Chromium's localStorage reaches other tabs a moment later.

import { signal } from "@preact/signals";
import { createStore, del, get, set } from "idb-keyval";
import { ApiError, type Config, type MyStore, refresh, type Tokens } from "./api";

const KEPT = "ordersync.session";
/** Present (in localStorage) while this device keeps the session. */
const ON_DEVICE = "ordersync.device";
const device = createStore("ordersync", "session");

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

function onDevice(): boolean {
  return localStorage.getItem(ON_DEVICE) !== null;
}

async function read(): Promise<Kept | null> {
  if (onDevice()) return (await get<Kept>(KEPT, device)) ?? null;
  const raw = sessionStorage.getItem(KEPT);
  return raw ? (JSON.parse(raw) as Kept) : null;
}

async function write(kept: Kept): Promise<void> {
  if (onDevice()) await set(KEPT, kept, device);
  else sessionStorage.setItem(KEPT, JSON.stringify(kept));
}

/** `work` alone among this device's tabs, where they share a session. */
function inTurn<T>(work: () => Promise<T>): Promise<T> {
  return onDevice() && navigator.locks ? navigator.locks.request(KEPT, work) : work();
}

/** Starts a session; `keepDevice` keeps it past this tab (a store's own tablet). */
export async function begin(config: Config, tokens: Tokens, picked: Picked | null, keepDevice?: boolean): Promise<void> {
  if (keepDevice !== undefined) {
    // A new sign-in chooses afresh: nothing of an earlier session stays in the other place.
    sessionStorage.removeItem(KEPT);
    await del(KEPT, device);
    if (keepDevice) localStorage.setItem(ON_DEVICE, "");
    else localStorage.removeItem(ON_DEVICE);
  }
  accessToken.value = tokens.accessToken;
  store.value = picked?.storeId ?? null;
  place.value = picked?.place ?? null;
  await write({ refreshToken: tokens.refreshToken, store: store.value, place: picked?.place });
  clearTimeout(timer);
  const renewIn = Math.max(5, tokens.expiresIn - 60) * 1000;
  timer = setTimeout(() => void resume(config), renewIn);
}

/** The store this device runs from now on (null: pick again). */
export function pick(picked: Picked | null): void {
  store.value = picked?.storeId ?? null;
  place.value = picked?.place ?? null;
  void inTurn(async () => {
    const kept = await read();
    if (kept) await write({ ...kept, store: picked?.storeId ?? null, place: picked?.place });
  });
}

/** Renews the session from the kept refresh token; false when there is none or it was refused. */
export function resume(config: Config): Promise<boolean> {
  // One tab at a time, each with the token the last one left.
  return inTurn(() => renew(config));
}

async function renew(config: Config): Promise<boolean> {
  const kept = await read();
  if (!kept?.refreshToken) return false;
  try {
    // A tab keeps the store it shows (another tab may have picked another since); a tab that opens
    // takes the one kept.
    const picked =
      store.value && place.value
        ? { storeId: store.value, place: place.value }
        : kept.store && kept.place
          ? { storeId: kept.store, place: kept.place }
          : null;
    await begin(config, await refresh(config, kept.refreshToken), picked);
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

let renewal: Promise<boolean> | null = null;

/**
 * Calls the API with the access token. A 401 — the token ran out while the tablet slept or its
 * renewal came late — is met with one renewal and one more try before the session ends: a
 * kitchen's board is not signed out while its refresh token is good. The first try was refused
 * before anything happened, so trying again is safe. Calls refused at once share one renewal.
 */
export async function withToken<T>(config: Config, call: (token: string) => Promise<T>): Promise<T> {
  const token = accessToken.value;
  if (!token) throw new ApiError(401, "UNAUTHENTICATED", "signed out");
  try {
    return await call(token);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) throw err;
    if (accessToken.value === token) {
      renewal ??= resume(config).finally(() => (renewal = null));
      await renewal;
    }
    const renewed = accessToken.value;
    if (!renewed || renewed === token) throw err;
    return await call(renewed);
  }
}

export function end(): void {
  clearTimeout(timer);
  localStorage.removeItem(ON_DEVICE);
  sessionStorage.removeItem(KEPT);
  void del(KEPT, device);
  accessToken.value = null;
  store.value = null;
  place.value = null;
}
