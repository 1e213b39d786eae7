// The live board: the store's active orders in columns, oldest first, kept current by the WebSocket
// API's pushes; after any gap it reloads the listing, so what happened offline appears, once.

import { useEffect, useRef, useState } from "preact/hooks";
import { signal } from "@preact/signals";
import { activeOrders, ApiError, type Config, move, type Order, REJECT_REASONS, type RejectReason } from "./api";
import { announces, type Facts, merge } from "./merge";
import { accessToken, end, pick, place, store, withToken } from "./session";
import { OwnerDay } from "./day";
import { current, loadStore, OpeningHours, StoreState } from "./hours";
import { MenuSwitches } from "./menu";
import { PasswordChange } from "./password";
import { StaffPanel } from "./staff";
import { MenuEditor } from "./editor";
import { StoreDetails } from "./settings";
import { chime, soundBlocked, unblock } from "./sound";
import { choose, language, t, type Key } from "./text";

const COLUMNS: { status: string; title: Key; next?: { to: string; label: Key } }[] = [
  { status: "PAID", title: "paid", next: { to: "ACCEPTED", label: "accept" } },
  { status: "ACCEPTED", title: "accepted", next: { to: "PREPARING", label: "prepare" } },
  { status: "PREPARING", title: "preparing", next: { to: "READY", label: "markReady" } },
  { status: "READY", title: "ready", next: { to: "COMPLETED", label: "complete" } },
];

/**
 * This page's name for itself (8 random base64url characters): its moves name it, and the API
 * pushes them to every board but this one, which the move's answer told already (each push is paid
 * for). Per page: two tabs are two boards.
 */
const device = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(6))))
  .replace(/\+/g, "-")
  .replace(/\//g, "_")
  .replace(/=+$/, "");

const orders = signal<Order[]>([]);
const offlineSince = signal<Date | null>(null);
const unacknowledged = signal<string[]>([]);
const notice = signal<string | null>(null);

/** Applies what the API said of an order in place; false when only a listing can tell (merge.ts). */
function apply(facts: Facts): boolean {
  const merged = merge(orders.value, facts);
  if (merged === null) return false;
  orders.value = merged;
  return true;
}

async function reload(config: Config): Promise<void> {
  const storeId = store.value;
  if (!accessToken.value || !storeId) return;
  try {
    orders.value = await withToken(config, (token) => activeOrders(config, token, storeId));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) end();
  }
}

/** Connects, and reconnects with backoff and jitter; every (re)connection reloads the listing. */
function listen(config: Config): () => void {
  let socket: WebSocket | null = null;
  let attempt = 0;
  let stopped = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  // The paid orders announced while this store is on screen, reconnections included.
  const heard = new Set<string>();
  const connect = () => {
    const url = new URL(config.websocket);
    url.searchParams.set("storeId", store.value ?? "");
    url.searchParams.set("access_token", accessToken.value ?? "");
    url.searchParams.set("device", device);
    socket = new WebSocket(url);
    socket.onopen = () => {
      attempt = 0;
      offlineSince.value = null;
      void reload(config);
    };
    socket.onmessage = (message) => {
      const push = JSON.parse(String(message.data)) as { type: string; order: Facts };
      if (announces(heard, push.type, push.order.orderId)) {
        unacknowledged.value = [...unacknowledged.value, push.order.orderId];
        chime();
      }
      if (!apply(push.order)) void reload(config);
    };
    socket.onclose = () => {
      if (stopped) return;
      offlineSince.value ??= new Date();
      const backoff = Math.min(30_000, 500 * 2 ** attempt++);
      retry = setTimeout(connect, backoff / 2 + Math.random() * (backoff / 2));
    };
  };
  // The device says when its network went away or came back: believed at once, not after the
  // socket's own time-out.
  const wentOffline = () => {
    offlineSince.value ??= new Date();
    socket?.close();
  };
  const cameBack = () => {
    clearTimeout(retry);
    attempt = 0;
    const state = socket?.readyState ?? WebSocket.CLOSED;
    if (state === WebSocket.CLOSED || state === WebSocket.CLOSING) connect();
  };
  window.addEventListener("offline", wentOffline);
  window.addEventListener("online", cameBack);
  connect();
  return () => {
    stopped = true;
    // Another store (or none) next: nothing of this one stays on screen.
    orders.value = [];
    unacknowledged.value = [];
    clearTimeout(retry);
    window.removeEventListener("offline", wentOffline);
    window.removeEventListener("online", cameBack);
    socket?.close();
  };
}

function elapsed(since: string): string {
  const minutes = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 60_000));
  return `${minutes}${t("minutes")}`;
}

/** The board's cards in reading order (columns left to right, each oldest first). */
function cards(): HTMLElement[] {
  return [...document.querySelectorAll<HTMLElement>(".columns article.card")];
}

/** After a move by key: the same order where it went, or the board's first card once it left. */
function refocus(orderId: string): void {
  setTimeout(() => {
    const all = cards();
    (all.find((card) => card.dataset.order === orderId) ?? all[0])?.focus();
  }, 0);
}

/** The board's keys, for a keyboard or a kitchen's bump bar: N goes to the oldest new order (and
 * acknowledges the alert), ↑ and ↓ go from card to card; on a card, Enter makes its next move and X
 * rejects it (Card). None while a text field, a list or a dialog has the keys, or with a modifier. */
function boardKeys(event: KeyboardEvent): void {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  const typing = "input:not([type=checkbox]):not([type=radio]), select, textarea, dialog";
  if ((event.target as Element | null)?.closest?.(typing)) return;
  const all = cards();
  if (event.key === "n" || event.key === "N") {
    unacknowledged.value = [];
    all.find((card) => card.dataset.status === "PAID")?.focus();
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    const at = all.indexOf(document.activeElement as HTMLElement);
    const to = event.key === "ArrowDown" ? Math.min(at + 1, all.length - 1) : Math.max(at - 1, 0);
    all[to]?.focus();
  } else {
    return;
  }
  event.preventDefault();
}

function Card({ config, order, next }: { config: Config; order: Order; next?: { to: string; label: Key } }) {
  const [eta, setEta] = useState(20);
  const rejecting = useRef<HTMLDialogElement>(null);
  const onKey = (event: KeyboardEvent) => {
    // Keys pressed on the card itself; its buttons and list keep their own.
    if (event.target !== event.currentTarget || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "Enter" && next) {
      void act(next.to, next.to === "ACCEPTED" ? { etaMinutes: eta } : {}).then(() => refocus(order.orderId));
    } else if ((event.key === "x" || event.key === "X") && order.status === "PAID") {
      rejecting.current?.showModal();
    } else {
      return;
    }
    event.preventDefault();
  };
  // A move on its way: a second press (a double tap, a bump bar's bounce) is not a second move.
  const moving = useRef(false);
  const act = async (to: string, extra: { etaMinutes?: number; reason?: RejectReason }) => {
    if (!accessToken.value || moving.current) return;
    if (offlineSince.value) {
      notice.value = t("offlineRefused");
      return;
    }
    moving.current = true;
    try {
      const moved = await withToken(config, (token) => move(config, token, order.orderId, to, { ...extra, device }));
      unacknowledged.value = unacknowledged.value.filter((id) => id !== order.orderId);
      apply({ orderId: moved.orderId, status: moved.status, orderVersion: moved.version, etaAt: moved.etaAt });
    } catch (err) {
      // Another board moved it first: show where it is now, not an error page.
      if (err instanceof ApiError && err.status === 409) notice.value = t("movedElsewhere");
      else if (err instanceof ApiError && err.status === 0) notice.value = t("offlineRefused");
      else if (err instanceof ApiError && err.status === 401) end();
      await reload(config);
    } finally {
      moving.current = false;
    }
  };
  return (
    <article
      class="card"
      data-order={order.orderId}
      data-status={order.status}
      tabIndex={0}
      aria-keyshortcuts={order.status === "PAID" ? "Enter X" : next ? "Enter" : undefined}
      onKeyDown={onKey}
    >
      <header>
        <strong>
          #{order.orderId.slice(-4).toUpperCase()} {order.orderName}
        </strong>
        <span>
          {elapsed(order.createdAt)}
          {order.etaAt && (
            <span class="eta">
              {" · "}
              {t("eta")}{" "}
              {new Date(order.etaAt).toLocaleTimeString("ko-KR", {
                hour: "2-digit",
                minute: "2-digit",
                timeZone: current.value?.timeZone,
              })}
            </span>
          )}
        </span>
      </header>
      <ul>
        {order.lines.map((line, index) => (
          <li key={index}>
            {line.name} × {line.quantity}
            {line.options.length > 0 && <small> ({line.options.map((o) => o.name).join(", ")})</small>}
          </li>
        ))}
      </ul>
      {order.note && <p class="note">{order.note}</p>}
      <footer>
        <span>{order.fulfilment === "DELIVERY" ? t("delivery") : t("pickup")}</span>
        <span>
          {order.total.toLocaleString("ko-KR")}
          {t("won")}
        </span>
      </footer>
      {next && (
        <div class="actions">
          {next.to === "ACCEPTED" && (
            <select value={eta} onChange={(e) => setEta(Number(e.currentTarget.value))} aria-label="ETA">
              {[10, 20, 30, 45].map((m) => (
                <option value={m}>
                  {m}
                  {t("minutes")}
                </option>
              ))}
            </select>
          )}
          <button type="button" onClick={() => void act(next.to, next.to === "ACCEPTED" ? { etaMinutes: eta } : {})}>
            {t(next.label)}
          </button>
          {order.status === "PAID" && (
            <button type="button" class="secondary" onClick={() => rejecting.current?.showModal()}>
              {t("reject")}
            </button>
          )}
        </div>
      )}
      {order.status === "PAID" && (
        <dialog ref={rejecting} aria-label={t("rejectTitle")}>
          <form method="dialog">
            <h3>{t("rejectTitle")}</h3>
            {REJECT_REASONS.map((reason) => (
              <button type="submit" onClick={() => void act("REJECTED", { reason })}>
                {t(reason)}
              </button>
            ))}
            <button type="submit" class="secondary">
              {t("cancel")}
            </button>
          </form>
        </dialog>
      )}
    </article>
  );
}

export function Board({ config }: { config: Config }) {
  useEffect(() => listen(config), [config]);
  useEffect(() => {
    window.addEventListener("keydown", boardKeys);
    return () => window.removeEventListener("keydown", boardKeys);
  }, []);
  // Whether the store is open moves with the clock: read it now and every minute.
  useEffect(() => {
    void loadStore(config);
    const every = setInterval(() => void loadStore(config), 60_000);
    return () => clearInterval(every);
  }, [config]);
  const [showMenu, setShowMenu] = useState(false);
  const [showHours, setShowHours] = useState(false);
  const [showDay, setShowDay] = useState(false);
  const [showPassword, setShowPassword] = useState(false);
  const [showStaff, setShowStaff] = useState(false);
  const [showEditor, setShowEditor] = useState(false);
  const [showDetails, setShowDetails] = useState(false);
  // A notice is news, not a state: it goes by itself (or at a tap).
  const shown = notice.value;
  useEffect(() => {
    if (!shown) return;
    const timer = setTimeout(() => (notice.value = null), 8_000);
    return () => clearTimeout(timer);
  }, [shown]);
  const oldestFirst = [...orders.value].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  return (
    <main data-store={store.value}>
      <nav>
        <h1>{t("title")}</h1>
        <div class="tools">
          <button type="button" aria-pressed={showMenu} onClick={() => setShowMenu(!showMenu)}>
            {t("menu")}
          </button>
          <button type="button" aria-pressed={showDay} onClick={() => setShowDay(!showDay)}>
            {t("sales")}
          </button>
          {place.value === "OWNER" && (
            <button type="button" aria-pressed={showHours} onClick={() => setShowHours(!showHours)}>
              {t("hours")}
            </button>
          )}
          {place.value === "OWNER" && (
            <button type="button" aria-pressed={showDetails} onClick={() => setShowDetails(!showDetails)}>
              {t("storeDetails")}
            </button>
          )}
          {place.value === "OWNER" && (
            <button type="button" aria-pressed={showEditor} onClick={() => setShowEditor(!showEditor)}>
              {t("editMenu")}
            </button>
          )}
          {place.value === "OWNER" && (
            <button type="button" aria-pressed={showStaff} onClick={() => setShowStaff(!showStaff)}>
              {t("staffTitle")}
            </button>
          )}
          <button
            type="button"
            class="secondary"
            lang={language.value === "ko" ? "en" : "ko"}
            onClick={() => choose(language.value === "ko" ? "en" : "ko")}
          >
            {language.value === "ko" ? "English" : "한국어"}
          </button>
          <button type="button" class="secondary" onClick={() => pick(null)}>
            {t("changeStore")}
          </button>
          <button type="button" class="secondary" aria-pressed={showPassword} onClick={() => setShowPassword(!showPassword)}>
            {t("changePassword")}
          </button>
          <button type="button" onClick={end}>
            {t("signOut")}
          </button>
        </div>
      </nav>
      <StoreState />
      {showHours && <OpeningHours config={config} onNotice={(text) => (notice.value = text)} />}
      {showDetails && place.value === "OWNER" && (
        <StoreDetails config={config} onNotice={(text) => (notice.value = text)} />
      )}
      {showEditor && place.value === "OWNER" && (
        <MenuEditor config={config} onNotice={(text) => (notice.value = text)} />
      )}
      {showStaff && place.value === "OWNER" && (
        <StaffPanel config={config} onNotice={(text) => (notice.value = text)} />
      )}
      {showMenu && <MenuSwitches config={config} onNotice={(text) => (notice.value = text)} />}
      {showPassword && (
        <PasswordChange
          config={config}
          onDone={(text) => {
            setShowPassword(false);
            notice.value = text;
          }}
        />
      )}
      {offlineSince.value && (
        <p class="banner offline" role="status">
          {t("offlineSince")} {offlineSince.value.toLocaleTimeString("ko-KR")}
        </p>
      )}
      {unacknowledged.value.length > 0 && (
        <p class="banner alert" role="alert">
          {t("newOrder")} ({unacknowledged.value.length})
          <button type="button" onClick={() => (unacknowledged.value = [])}>
            {t("acknowledge")}
          </button>
        </p>
      )}
      {soundBlocked.value && (
        <p class="banner notice" role="status">
          <button type="button" onClick={unblock}>
            {t("soundOn")}
          </button>
        </p>
      )}
      {notice.value && (
        <p class="banner notice" role="status" onClick={() => (notice.value = null)}>
          {notice.value}
        </p>
      )}
      {showDay && <OwnerDay config={config} onNotice={(text) => (notice.value = text)} />}
      <section class="columns" hidden={showDay}>
        {COLUMNS.map((column) => {
          const here = oldestFirst.filter((o) => o.status === column.status);
          return (
            <div class="column" data-column={column.status}>
              <h2>
                {t(column.title)} <span>{here.length}</span>
              </h2>
              {here.length === 0 && <p class="empty">{t("empty")}</p>}
              {here.map((order) => (
                <Card key={order.orderId} config={config} order={order} next={column.next} />
              ))}
            </div>
          );
        })}
      </section>
      <p class="keys" hidden={showDay}>
        {t("keys")}
      </p>
    </main>
  );
}
