import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { type Config, loadConfig, signIn } from "./api";
import { Board } from "./board";
import { StorePicker } from "./picker";
import { accessToken, begin, resume, store } from "./session";
import { t } from "./text";
import "./style.css";

function SignIn({ config }: { config: Config }) {
  const [failed, setFailed] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    try {
      const tokens = await signIn(config, String(form.get("email")), String(form.get("password")));
      await begin(config, tokens, null, form.get("keep") === "on");
    } catch {
      setFailed(true);
    }
  };
  return (
    <main class="sign-in">
      <h1>{t("title")}</h1>
      <form onSubmit={submit}>
        <label>
          {t("email")} <input name="email" type="email" autocomplete="username" required />
        </label>
        <label>
          {t("password")} <input name="password" type="password" autocomplete="current-password" required />
        </label>
        <label class="check">
          <input name="keep" type="checkbox" /> {t("keepDevice")}
        </label>
        <button type="submit">{t("signIn")}</button>
        {failed && <p role="alert">{t("signInFailed")}</p>}
      </form>
    </main>
  );
}

function App() {
  const [config, setConfig] = useState<Config | null>(null);
  useEffect(() => {
    void loadConfig().then(async (loaded) => {
      await resume(loaded);
      setConfig(loaded);
    });
  }, []);
  if (!config) return null;
  if (!accessToken.value) return <SignIn config={config} />;
  // One board per store: a change of store starts it afresh (its socket, its listing).
  return store.value ? <Board key={store.value} config={config} /> : <StorePicker config={config} />;
}

render(<App />, document.getElementById("app")!);
