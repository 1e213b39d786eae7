// Whether the store takes orders: the board shows it always (a closed store's board says so); its
// owner switches orders off and on and sets the week's opening hours (up to two spans a day, for a
// break). Customers are refused from the moment the API answers.

import { computed, signal } from "@preact/signals";
import { useState } from "preact/hooks";
import { ApiError, type Config, type Interval, type Store, type StoreSettings, storeInfo, updateStore, type WeeklyHours } from "./api";
import { accessToken, end, store, withToken } from "./session";
import { t, type Key } from "./text";

/** The store as last read. */
const read = signal<Store | null>(null);

/** The picked store's settings and whether it is open now; none of another store's, read before a
 * change of store, shows while the new one's read is on its way. */
export const current = computed(() => (read.value?.storeId === store.value ? read.value : null));

/** The store as a change to it answered. */
export function changed(store: Store): void {
  read.value = store;
}

export async function loadStore(config: Config): Promise<void> {
  if (!store.value) return;
  try {
    read.value = await storeInfo(config, store.value);
  } catch {
    // The board works without it; the next load tries again.
  }
}

const DAYS: (keyof WeeklyHours)[] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/** "09:00" (or "09:00:00", as stores saved before 2026-12-07 answer) → "09:00", as a time input holds it. */
function hhmm(time: string): string {
  return time.slice(0, 5);
}

export function StoreState() {
  const status = current.value?.status;
  if (!status || status.open) return null;
  const why: Key =
    status.reason === "CLOSED_BY_STORE" ? "closedByStore" : status.reason === "CLOSED_TODAY" ? "closedToday" : "outsideHours";
  return (
    <p class="banner offline" role="status" data-store-closed={status.reason}>
      {t(why)}
    </p>
  );
}

export function OpeningHours({ config, onNotice }: { config: Config; onNotice: (text: string) => void }) {
  const now = current.value;
  const [week, setWeek] = useState<WeeklyHours | null>(null);
  if (!now) return null;
  const editing = week ?? now.weeklyHours;
  const save = async (patch: Partial<Pick<StoreSettings, "acceptingOrders" | "weeklyHours">>) => {
    const storeId = store.value;
    if (!accessToken.value || !storeId) return;
    try {
      read.value = await withToken(config, (token) => updateStore(config, token, storeId, patch));
      setWeek(null);
      onNotice(t("hoursSaved"));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) end();
      else if (err instanceof ApiError && err.status === 0) onNotice(t("offlineRefused"));
      else onNotice(`${t("hoursFailed")}${err instanceof ApiError && err.message ? `: ${err.message}` : ""}`);
    }
  };
  const setDay = (day: keyof WeeklyHours, spans: Interval[]) => setWeek({ ...editing, [day]: spans });
  const setSpan = (day: keyof WeeklyHours, index: number, end: keyof Interval, time: string) =>
    setDay(
      day,
      editing[day].map((span, i) => (i === index ? { ...span, [end]: time } : span)),
    );
  return (
    <section class="hours" aria-label={t("hours")}>
      <label class="switch">
        <input
          type="checkbox"
          role="switch"
          aria-label={t("takingOrders")}
          checked={now.acceptingOrders}
          onChange={(e) => void save({ acceptingOrders: e.currentTarget.checked })}
        />
        <span>{t("takingOrders")}</span>
      </label>
      <table>
        <tbody>
          {DAYS.map((day) => {
            const spans = editing[day] ?? [];
            return (
              <tr key={day} data-day={day}>
                <th scope="row">{t(day)}</th>
                <td>
                  {spans.length === 0 && <span class="empty">{t("dayOff")}</span>}
                  {spans.map((span, index) => (
                    <span class="span" key={index}>
                      <input
                        type="time"
                        aria-label={`${t(day)} ${index + 1} ${t("opens")}`}
                        value={hhmm(span.open)}
                        onChange={(e) => setSpan(day, index, "open", e.currentTarget.value)}
                      />
                      ~
                      <input
                        type="time"
                        aria-label={`${t(day)} ${index + 1} ${t("closes")}`}
                        value={hhmm(span.close)}
                        onChange={(e) => setSpan(day, index, "close", e.currentTarget.value)}
                      />
                      <button
                        type="button"
                        class="secondary"
                        aria-label={`${t(day)} ${index + 1} ${t("removeSpan")}`}
                        onClick={() => setDay(day, spans.filter((_, i) => i !== index))}
                      >
                        ×
                      </button>
                    </span>
                  ))}
                  {spans.length < 2 && (
                    <button
                      type="button"
                      class="secondary"
                      aria-label={`${t(day)} ${t("addSpan")}`}
                      onClick={() => setDay(day, [...spans, { open: "09:00", close: "21:00" }])}
                    >
                      +
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <button type="button" disabled={week === null} onClick={() => void save({ weeklyHours: editing })}>
        {t("saveHours")}
      </button>
    </section>
  );
}
