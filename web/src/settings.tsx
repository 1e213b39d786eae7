// The store's details as its owner keeps them on the board ("매장 정보"): its name, phone and
// address, how long an order takes to prepare, the smallest order it takes, how many it queues
// before it turns new ones away; and the dates it is closed all day (임시 휴무). Only what
// changed is sent; the dates are a list the API replaces whole, so the ones with hours of their
// own (set through the API) are sent back as they were read.

import { useState } from "preact/hooks";
import { ApiError, type Config, type StoreSettings, updateStore } from "./api";
import { changed, current } from "./hours";
import { end, store, withToken } from "./session";
import { type Key, t } from "./text";

type Details = Pick<StoreSettings, "name" | "phone" | "address" | "prepMinutes" | "minOrderAmount" | "maxQueuedOrders">;

const NUMBERS = [
  ["prepMinutes", 1, 240],
  ["minOrderAmount", 0, 10_000_000],
  ["maxQueuedOrders", 1, 500],
] as const;

/** Today in the store's zone (YYYY-MM-DD): a closed date before it is over. */
function today(zone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date());
}

export function StoreDetails({ config, onNotice }: { config: Config; onNotice: (text: string) => void }) {
  const now = current.value;
  const [draft, setDraft] = useState<Partial<Details>>({});
  const [closedOn, setClosedOn] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!now) return null;

  const save = async (patch: Partial<StoreSettings>, done: Key) => {
    const storeId = store.value;
    if (!storeId) return false;
    setBusy(true);
    setError(null);
    try {
      changed(await withToken(config, (token) => updateStore(config, token, storeId, patch)));
      onNotice(t(done));
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) end();
      else if (err instanceof ApiError && err.status === 0) setError(t("offlineRefused"));
      else if (err instanceof ApiError && err.code === "STORE_CHANGED") setError(t("storeChanged"));
      else setError(`${t("hoursFailed")}${err instanceof ApiError && err.message ? `: ${err.message}` : ""}`);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const value = <K extends keyof Details>(key: K): Details[K] => draft[key] ?? now[key];
  const submit = async (e: Event) => {
    e.preventDefault();
    // Only what differs from the store as read: a field another device changed meanwhile, and
    // this one did not touch, is left as that device set it.
    const patch: Partial<Details> = {};
    for (const key of Object.keys(draft) as (keyof Details)[]) {
      if (draft[key] !== now[key]) Object.assign(patch, { [key]: draft[key] });
    }
    if (Object.keys(patch).length === 0) return;
    if (await save(patch, "detailsSaved")) setDraft({});
  };

  const from = today(now.timeZone);
  const closedDates = now.exceptions.filter((e) => (e.hours ?? []).length === 0 && e.date >= from);
  const setClosed = (exceptions: typeof now.exceptions, done: Key) =>
    // Past dates go: they change nothing any more.
    save({ exceptions: exceptions.filter((e) => e.date >= from) }, done);
  const addClosed = async (e: Event) => {
    e.preventDefault();
    if (!closedOn || now.exceptions.some((x) => x.date === closedOn)) return;
    const next = [...now.exceptions, { date: closedOn, hours: [] }].sort((a, b) => a.date.localeCompare(b.date));
    if (await setClosed(next, "closedDateSaved")) setClosedOn("");
  };

  return (
    <section class="details" aria-label={t("storeDetails")}>
      <h2>{t("storeDetails")}</h2>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          {t("storeName")}
          <input required maxLength={100} value={value("name")} onInput={(e) => setDraft({ ...draft, name: e.currentTarget.value })} />
        </label>
        <label>
          {t("storePhone")}
          <input type="tel" required value={value("phone")} onInput={(e) => setDraft({ ...draft, phone: e.currentTarget.value })} />
        </label>
        <label>
          {t("storeAddress")}
          <input required maxLength={300} value={value("address")} onInput={(e) => setDraft({ ...draft, address: e.currentTarget.value })} />
        </label>
        {NUMBERS.map(([key, min, max]) => (
          <label key={key}>
            {t(key)}
            <input
              type="number"
              inputMode="numeric"
              required
              min={min}
              max={max}
              step={1}
              value={value(key)}
              onInput={(e) => setDraft({ ...draft, [key]: e.currentTarget.valueAsNumber })}
            />
          </label>
        ))}
        <button type="submit" disabled={busy || Object.keys(draft).length === 0}>
          {t("saveDetails")}
        </button>
      </form>
      <h3>{t("closedDates")}</h3>
      {closedDates.length === 0 && <p class="empty">{t("noClosedDates")}</p>}
      <ul>
        {closedDates.map((day) => (
          <li key={day.date} data-closed={day.date}>
            <span>{day.date}</span>
            <button
              type="button"
              class="secondary"
              aria-label={`${day.date} ${t("reopenDate")}`}
              disabled={busy}
              onClick={() => void setClosed(now.exceptions.filter((x) => x.date !== day.date), "closedDateRemoved")}
            >
              {t("reopenDate")}
            </button>
          </li>
        ))}
      </ul>
      <form onSubmit={(e) => void addClosed(e)}>
        <label>
          {t("closedOn")}
          <input type="date" required min={from} value={closedOn} onInput={(e) => setClosedOn(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>
          {t("addClosedDate")}
        </button>
      </form>
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
