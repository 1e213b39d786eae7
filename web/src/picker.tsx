// After sign-in: the store this device runs. One store is taken at once; several are offered by
// name; none is said plainly.

import { useEffect, useState } from "preact/hooks";
import { ApiError, type Config, type MyStore, myStores } from "./api";
import { accessToken, end, pick, withToken } from "./session";
import { t } from "./text";

export function StorePicker({ config }: { config: Config }) {
  const [stores, setStores] = useState<MyStore[] | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    if (!accessToken.value) return;
    void withToken(config, (token) => myStores(config, token)).then(
      (found) => {
        if (found.length === 1) pick(found[0]);
        else setStores(found);
      },
      (err) => {
        if (err instanceof ApiError && err.status === 401) end();
        else setFailed(true);
      },
    );
  }, [config]);
  return (
    <main class="sign-in">
      <h1>{t("pickStore")}</h1>
      {failed && <p role="alert">{t("storesFailed")}</p>}
      {stores?.length === 0 && <p role="alert">{t("noStores")}</p>}
      {stores && stores.length > 0 && (
        <ul class="stores">
          {stores.map((s) => (
            <li key={s.storeId}>
              <button type="button" onClick={() => pick(s)}>
                {s.name}
              </button>{" "}
              <small>{t(s.place === "OWNER" ? "owner" : "staff")}</small>
            </li>
          ))}
        </ul>
      )}
      <button type="button" class="secondary" onClick={end}>
        {t("signOut")}
      </button>
    </main>
  );
}
