// After sign-in: the store this device runs. One store is taken at once; several are offered by
// name; none is said plainly. Invitations to a store's staff are offered here too, each accepted
// with a tap: the board is where a new member of staff first signs in.

import { useEffect, useState } from "preact/hooks";
import { acceptInvitation, ApiError, type Config, type Invitation, type MyStore, myInvitations, myStores } from "./api";
import { accessToken, end, pick, withToken } from "./session";
import { t } from "./text";

export function StorePicker({ config }: { config: Config }) {
  const [stores, setStores] = useState<MyStore[] | null>(null);
  const [invitations, setInvitations] = useState<Invitation[]>([]);
  const [failed, setFailed] = useState<string | null>(null);
  const refused = (err: unknown, otherwise: string) => {
    if (err instanceof ApiError && err.status === 401) end();
    else setFailed(otherwise);
  };
  const load = () =>
    withToken(config, (token) => Promise.all([myStores(config, token), myInvitations(config, token)])).then(
      ([found, invited]) => {
        // One store and nothing to answer: no choice to make.
        if (found.length === 1 && invited.length === 0) pick(found[0]);
        else {
          setStores(found);
          setInvitations(invited);
        }
      },
      (err) => refused(err, t("storesFailed")),
    );
  useEffect(() => {
    if (!accessToken.value) return;
    void load();
  }, [config]);
  const accept = async (storeId: string) => {
    setFailed(null);
    try {
      await withToken(config, (token) => acceptInvitation(config, token, storeId));
    } catch (err) {
      // Lapsed or withdrawn meanwhile: said so, and the list read again.
      refused(err, t(err instanceof ApiError && err.status === 404 ? "invitationGone" : "acceptFailed"));
    }
    await load();
  };
  return (
    <main class="sign-in">
      <h1>{t("pickStore")}</h1>
      {failed && <p role="alert">{failed}</p>}
      {stores?.length === 0 && invitations.length === 0 && <p role="alert">{t("noStores")}</p>}
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
      {invitations.length > 0 && (
        <>
          <h2>{t("invitationsForYou")}</h2>
          <ul class="stores">
            {invitations.map((i) => (
              <li key={i.storeId} data-invitation={i.storeId}>
                <span>{i.storeName}</span>
                <small>
                  {t("invitationUntil")} {new Date(i.expiresAt).toLocaleDateString("ko-KR")}
                </small>
                <button type="button" onClick={() => void accept(i.storeId)}>
                  {t("acceptInvitation")}
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
      <button type="button" class="secondary" onClick={end}>
        {t("signOut")}
      </button>
    </main>
  );
}
