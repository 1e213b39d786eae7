// The store's sold-out switches: the menu's items, each with a switch the staff flip when an item
// runs out (and back). Customers are refused a sold-out item from the moment the switch answers.

import { useEffect, useState } from "preact/hooks";
import { ApiError, type Config, type MenuItem, menuItems, setAvailable } from "./api";
import { accessToken, end, store, withToken } from "./session";
import { t } from "./text";

export function MenuSwitches({ config, onNotice }: { config: Config; onNotice: (text: string) => void }) {
  const [items, setItems] = useState<MenuItem[] | null>(null);
  useEffect(() => {
    if (store.value) void menuItems(config, store.value).then(setItems, () => onNotice(t("menuFailed")));
  }, [config]);
  const flip = async (item: MenuItem, soldOut: boolean) => {
    const storeId = store.value;
    if (!accessToken.value || !storeId) return;
    try {
      const saved = await withToken(config, (token) => setAvailable(config, token, storeId, item.id, !soldOut));
      setItems((now) => now?.map((i) => (i.id === saved.id ? { ...i, available: saved.available } : i)) ?? null);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) end();
      else onNotice(t(err instanceof ApiError && err.status === 0 ? "offlineRefused" : "menuFailed"));
    }
  };
  if (!items) return null;
  return (
    <section class="menu" aria-label={t("menu")}>
      {items.map((item) => (
        <label key={item.id} class={item.available ? "" : "sold-out"}>
          <input
            type="checkbox"
            role="switch"
            aria-label={`${item.name} ${t("soldOut")}`}
            checked={!item.available}
            onChange={(e) => void flip(item, e.currentTarget.checked)}
          />
          <span>{item.name}</span>
          {!item.available && <strong>{t("soldOut")}</strong>}
        </label>
      ))}
    </section>
  );
}
