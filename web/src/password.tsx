// The signed-in person changes their password from the board (a store's tablet is where owners and
// staff are signed in). The API ends every other session and answers a new one, which this device
// carries on with.

import { useState } from "preact/hooks";
import { ApiError, changePassword, type Config } from "./api";
import { begin, end, place, store, withToken } from "./session";
import { t } from "./text";

export function PasswordChange({ config, onDone }: { config: Config; onDone: (text: string) => void }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const tokens = await withToken(config, (token) => changePassword(config, token, current, next));
      // This device's session goes on as the new one (kept where the old one was).
      const picked = store.value && place.value ? { storeId: store.value, place: place.value } : null;
      await begin(config, tokens, picked);
      onDone(t("passwordChanged"));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) end();
      else if (err instanceof ApiError && err.code === "WRONG_PASSWORD") setError(t("wrongPassword"));
      else if (err instanceof ApiError && (err.code === "WEAK_PASSWORD" || err.status === 422))
        setError(`${t("weakPassword")}${err.message ? `: ${err.message}` : ""}`);
      else if (err instanceof ApiError && err.status === 429) setError(t("tooManyTries"));
      else if (err instanceof ApiError && err.status === 0) setError(t("offlineRefused"));
      else setError(t("passwordFailed"));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="password" aria-label={t("changePassword")} onSubmit={(e) => void submit(e)}>
      <label>
        {t("currentPassword")}
        <input
          type="password"
          autocomplete="current-password"
          required
          value={current}
          onInput={(e) => setCurrent(e.currentTarget.value)}
        />
      </label>
      <label>
        {t("newPassword")}
        <input
          type="password"
          autocomplete="new-password"
          required
          minLength={10}
          maxLength={128}
          value={next}
          onInput={(e) => setNext(e.currentTarget.value)}
        />
      </label>
      {error && <p role="alert">{error}</p>}
      <button type="submit" disabled={busy}>
        {t("savePassword")}
      </button>
    </form>
  );
}
