// The owner's day: a chosen day's sales (today's, in the store's time zone, by default), its lost
// sales, its orders by hour as a chart, the best sellers over a range; and for the owner, the
// audit trail, the month's CSV and refunds of completed orders. Staff see the figures only (the API
// answers the rest 403 to them).

import { useEffect, useRef, useState } from "preact/hooks";
import {
  ApiError,
  type AuditRecord,
  auditTrail,
  completedOrders,
  type Config,
  type DailyReport,
  dailyReport,
  exportMonth,
  type ItemSales,
  type Order,
  type OrderRefunds,
  orderRefunds,
  refund,
  topItems,
} from "./api";
import { current } from "./hours";
import { accessToken, end, place, store, withToken } from "./session";
import { t, won, word } from "./text";

/** The calendar date now in `timeZone` (YYYY-MM-DD): the store's "today", wherever the device is. */
export function today(timeZone: string, now = new Date()): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(now);
}

/** `date` moved by `days` (YYYY-MM-DD in, YYYY-MM-DD out). */
export function shift(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

function HourChart({ counts }: { counts: number[] }) {
  const most = Math.max(1, ...counts);
  const busy = counts.flatMap((count, hour) => (count > 0 ? [`${hour}${t("hour")} ${count}${t("count")}`] : []));
  return (
    <figure class="chart">
      <figcaption>{t("byHour")}</figcaption>
      <svg viewBox="0 0 240 72" role="img" aria-label={`${t("byHour")}: ${busy.join(", ") || t("noSales")}`}>
        {counts.map((count, hour) => {
          const height = (count / most) * 60;
          return (
            <rect key={hour} data-hour={hour} data-count={count} x={hour * 10 + 1} y={62 - height} width={8} height={height}>
              <title>{`${hour}${t("hour")} ${count}${t("count")}`}</title>
            </rect>
          );
        })}
        {[0, 3, 6, 9, 12, 15, 18, 21].map((hour) => (
          <text key={hour} x={hour * 10 + 1} y={70}>
            {hour}
          </text>
        ))}
      </svg>
    </figure>
  );
}

function RefundDialog({
  config,
  order,
  onDone,
}: {
  config: Config;
  order: Order;
  onDone: (text: string) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  // One key per refund the owner means: a retry of the same submission never refunds twice.
  const key = useRef(crypto.randomUUID());
  const [failed, setFailed] = useState<string | null>(null);
  // The order's refunds so far, read each time the dialog opens: what is left bounds the amount.
  const [made, setMade] = useState<OrderRefunds | null>(null);
  // The amount waits for them: typed before they arrived, it would be replaced by what is left.
  const [reading, setReading] = useState(false);
  const open = async () => {
    setFailed(null);
    setMade(null);
    setReading(true);
    dialog.current?.showModal();
    try {
      setMade(await withToken(config, (token) => orderRefunds(config, token, order.orderId)));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) end();
      // Unread, the refund can still be asked for: the server bounds it.
    } finally {
      setReading(false);
    }
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    const element = event.currentTarget as HTMLFormElement;
    const form = new FormData(element);
    if (!accessToken.value) return;
    try {
      const done = await withToken(config, (token) =>
        refund(config, token, order.orderId, key.current, Number(form.get("amount")), String(form.get("reason"))),
      );
      key.current = crypto.randomUUID();
      element.reset();
      dialog.current?.close();
      onDone(`${t(done.state === "DONE" ? "refunded" : "refundPending")}: ${won(done.amount)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) end();
      else if (err instanceof ApiError && err.code === "REFUND_EXCEEDS_BALANCE") setFailed(t("refundExceeds"));
      else if (err instanceof ApiError && err.code === "REFUND_LIMIT_REACHED") setFailed(t("refundLimit"));
      else if (err instanceof ApiError && err.status === 0) setFailed(t("offlineRefused"));
      else setFailed(t("refundFailed"));
    }
  };
  const left = made ? made.balanceAmount : order.total;
  return (
    <>
      <button type="button" class="secondary" onClick={() => void open()}>
        {t("refund")}
      </button>
      <dialog ref={dialog} aria-label={t("refund")}>
        <form onSubmit={submit}>
          <h3>
            {t("refund")} · {order.orderName}
          </h3>
          {made && made.refunds.length > 0 && (
            <ul class="refunds" aria-label={t("refundsMade")}>
              {made.refunds.map((r) => (
                <li key={r.refundId} data-state={r.state}>
                  <span>{won(r.amount)}</span> <span>{r.reason}</span> <span>{t(`refundState:${r.state}`)}</span>
                </li>
              ))}
            </ul>
          )}
          {made && <p data-figure="refundable">{`${t("refundable")}: ${won(made.balanceAmount)}`}</p>}
          <label>
            {t("refundAmount")}{" "}
            <input
              key={left}
              name="amount"
              type="number"
              min={1}
              max={left}
              step={1}
              value={left}
              disabled={reading || left === 0}
              required
            />
          </label>
          <label>
            {t("refundReason")} <input name="reason" maxLength={200} required />
          </label>
          {failed && <p role="alert">{failed}</p>}
          <button type="submit" disabled={reading || left === 0}>
            {t("refundSubmit")}
          </button>
          <button type="button" class="secondary" onClick={() => dialog.current?.close()}>
            {t("cancel")}
          </button>
        </form>
      </dialog>
    </>
  );
}

export function OwnerDay({ config, onNotice }: { config: Config; onNotice: (text: string) => void }) {
  const [date, setDate] = useState<string | null>(null);
  const [from, setFrom] = useState<string | null>(null);
  const [report, setReport] = useState<DailyReport | null>(null);
  const [best, setBest] = useState<ItemSales[]>([]);
  const [audit, setAudit] = useState<AuditRecord[] | null>(null);
  const [completed, setCompleted] = useState<Order[]>([]);
  const [download, setDownload] = useState<string | null>(null);
  const [loads, setLoads] = useState(0);
  const owner = place.value === "OWNER";

  // The store's own "today" starts the page (the board read the store as it opened).
  const zone = current.value?.timeZone;
  useEffect(() => {
    if (!zone || date) return;
    const day = today(zone);
    setDate(day);
    setFrom(shift(day, -6));
  }, [zone]);

  useEffect(() => {
    const storeId = store.value;
    if (!accessToken.value || !storeId || !date || !from) return;
    const failed = (err: unknown) => {
      if (err instanceof ApiError && err.status === 401) end();
      else onNotice(t("reportFailed"));
    };
    void withToken(config, (token) => dailyReport(config, token, storeId, date)).then(setReport, failed);
    void withToken(config, (token) => topItems(config, token, storeId, from, date)).then(setBest, failed);
    if (owner) {
      void withToken(config, (token) => auditTrail(config, token, storeId)).then(setAudit, failed);
      void withToken(config, (token) => completedOrders(config, token, storeId)).then(setCompleted, failed);
    }
  }, [config, date, from, loads, owner]);

  const exportIt = async () => {
    const storeId = store.value;
    if (!accessToken.value || !storeId || !date) return;
    try {
      setDownload((await withToken(config, (token) => exportMonth(config, token, storeId, date.slice(0, 7)))).url);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) end();
      else onNotice(t("reportFailed"));
    }
  };

  if (!date || !from) return null;
  return (
    <section class="day" aria-label={t("sales")}>
      <div class="range">
        <label>
          {t("date")}{" "}
          <input type="date" value={date} onChange={(e) => e.currentTarget.value && setDate(e.currentTarget.value)} />
        </label>
        <button type="button" class="secondary" onClick={() => setLoads(loads + 1)}>
          {t("reload")}
        </button>
      </div>
      {report && (
        <>
          <dl class="figures">
            <div data-figure="orders">
              <dt>{t("orders")}</dt>
              <dd>{report.orders.toLocaleString("ko-KR")}</dd>
            </div>
            <div data-figure="grossSales">
              <dt>{t("grossSales")}</dt>
              <dd>{won(report.grossSales)}</dd>
            </div>
            <div data-figure="refunds">
              <dt>{t("refunds")}</dt>
              <dd>{won(report.refunds)}</dd>
            </div>
            <div data-figure="netSales">
              <dt>{t("netSales")}</dt>
              <dd>{won(report.netSales)}</dd>
            </div>
            <div data-figure="lostSales">
              <dt>{t("lostSales")}</dt>
              <dd>{won(report.lostSales.total)}</dd>
            </div>
          </dl>
          <HourChart counts={report.ordersByHour} />
        </>
      )}
      <h2>{t("topItems")}</h2>
      <div class="range">
        <label>
          {t("from")}{" "}
          <input
            type="date"
            value={from}
            max={date}
            onChange={(e) => e.currentTarget.value && setFrom(e.currentTarget.value)}
          />
        </label>
        <span>~ {date}</span>
      </div>
      {best.length === 0 ? (
        <p class="empty">{t("noSales")}</p>
      ) : (
        <ol class="top-items">
          {best.map((item) => (
            <li key={item.itemId}>
              <span>{item.name}</span> <span>{item.count.toLocaleString("ko-KR")}{t("count")}</span>{" "}
              <span>{won(item.revenue)}</span>
            </li>
          ))}
        </ol>
      )}
      {owner && (
        <>
          <h2>{t("completedOrders")}</h2>
          {completed.length === 0 && <p class="empty">{t("empty")}</p>}
          <ul class="completed">
            {completed.map((order) => (
              <li key={order.orderId} data-order={order.orderId}>
                <span>
                  #{order.orderId.slice(-4).toUpperCase()} {order.orderName}
                </span>
                <span>{won(order.total)}</span>
                <RefundDialog
                  config={config}
                  order={order}
                  onDone={(text) => {
                    onNotice(text);
                    setLoads((n) => n + 1);
                  }}
                />
              </li>
            ))}
          </ul>
          <h2>{t("export")}</h2>
          <p>
            <button type="button" onClick={() => void exportIt()}>
              {t("exportMonth")} ({date.slice(0, 7)})
            </button>{" "}
            {download && (
              <a href={download} download>
                {t("download")}
              </a>
            )}
          </p>
          <h2>{t("audit")}</h2>
          {audit && (
            <table class="audit">
              <tbody>
                {audit.map((record, index) => (
                  <tr key={index}>
                    <td>{new Date(record.at).toLocaleString("ko-KR", { timeZone: zone })}</td>
                    <td data-action={record.action}>{word("action", record.action)}</td>
                    <td>#{record.target.slice(-4).toUpperCase()}</td>
                    <td>
                      {record.before && record.after
                        ? `${word("status", record.before)} → ${word("status", record.after)}`
                        : record.after
                          ? word("status", record.after)
                          : ""}
                      {record.amount !== undefined && ` ${won(record.amount)}`}
                    </td>
                    <td>{word("actor", record.actor.kind)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
