// The store's staff as its owner manages them from the board: who works here (by name), whom the
// store has invited, an invitation by the address the person signs in with, and removal (a second
// tap confirms it: a tablet is tapped by mistake). An invitation shows no name (the API tells a
// store a name only once the person joins), so the addresses invited from this page are kept in
// memory to show beside their invitations.

import { useEffect, useState } from "preact/hooks";
import { ApiError, type Config, inviteStaff, removeStaff, staffList, type StaffList } from "./api";
import { end, store, withToken } from "./session";
import { t } from "./text";

/** The address each invitation sent from this page went to, by the invited account's id. */
const invitedAddresses = new Map<string, string>();

function day(at: string): string {
  return new Date(at).toLocaleDateString("ko-KR");
}

export function StaffPanel({ config, onNotice }: { config: Config; onNotice: (text: string) => void }) {
  const storeId = store.value;
  const [list, setList] = useState<StaffList | null>(null);
  const [email, setEmail] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState<string | null>(null);

  /** A refusal in words; a session that ended signs the board out. */
  const failed = (err: unknown, otherwise: string) => {
    if (err instanceof ApiError && err.status === 401) end();
    else if (err instanceof ApiError && err.status === 0) setError(t("offlineRefused"));
    else if (err instanceof ApiError && err.code === "USER_NOT_FOUND") setError(t("noSuchAccount"));
    else if (err instanceof ApiError && err.status === 422)
      setError(`${t("cannotInvite")}${err.message ? `: ${err.message}` : ""}`);
    else setError(otherwise);
  };
  const load = async () => {
    if (!storeId) return;
    try {
      setList(await withToken(config, (token) => staffList(config, token, storeId)));
    } catch (err) {
      failed(err, t("staffFailed"));
    }
  };
  useEffect(() => {
    setList(null);
    void load();
  }, [storeId]);

  const invite = async (e: Event) => {
    e.preventDefault();
    if (!storeId) return;
    setBusy(true);
    setError(null);
    try {
      const standing = await withToken(config, (token) => inviteStaff(config, token, storeId, email));
      invitedAddresses.set(standing.userId, email.trim());
      setEmail("");
      onNotice(t(standing.status === "STAFF" ? "alreadyStaff" : "invited"));
      await load();
    } catch (err) {
      failed(err, t("cannotInvite"));
    } finally {
      setBusy(false);
    }
  };

  const remove = async (userId: string, invitation: boolean) => {
    if (confirming !== userId) {
      setConfirming(userId);
      return;
    }
    if (!storeId) return;
    setConfirming(null);
    setError(null);
    try {
      await withToken(config, (token) => removeStaff(config, token, storeId, userId));
      onNotice(t(invitation ? "invitationWithdrawn" : "staffRemoved"));
      await load();
    } catch (err) {
      failed(err, t("staffFailed"));
    }
  };

  const removal = (userId: string, invitation: boolean) => (
    <button
      type="button"
      class="secondary"
      aria-pressed={confirming === userId}
      onClick={() => void remove(userId, invitation)}
    >
      {confirming === userId ? t("confirmRemove") : t(invitation ? "withdrawInvitation" : "removeStaff")}
    </button>
  );

  return (
    <section class="staff" aria-label={t("staffTitle")}>
      <h2>{t("staffTitle")}</h2>
      {list && list.staff.length === 0 && <p class="empty">{t("noStaff")}</p>}
      {list && list.staff.length > 0 && (
        <ul>
          {list.staff.map((member) => (
            <li key={member.userId} data-user={member.userId}>
              <span>{member.name ?? t("accountGone")}</span>
              <small>
                {t("staffSince")} {day(member.addedAt)}
              </small>
              {removal(member.userId, false)}
            </li>
          ))}
        </ul>
      )}
      {list && list.invitations.length > 0 && (
        <>
          <h3>{t("invitationsTitle")}</h3>
          <ul>
            {list.invitations.map((invitation) => (
              <li key={invitation.userId} data-invited={invitation.userId}>
                <span>{invitedAddresses.get(invitation.userId) ?? `${t("invitedAccount")} …${invitation.userId.slice(-6)}`}</span>
                <small>
                  {t("invitationUntil")} {day(invitation.expiresAt)}
                </small>
                {removal(invitation.userId, true)}
              </li>
            ))}
          </ul>
        </>
      )}
      <form onSubmit={(e) => void invite(e)}>
        <label>
          {t("inviteByEmail")}
          <input
            type="email"
            autocomplete="off"
            required
            maxLength={254}
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={busy}>
          {t("invite")}
        </button>
      </form>
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
