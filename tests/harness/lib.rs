//! The end-to-end harness: each test starts its own local stack — moto's server on a free port, the
//! template's resources, the local runner on another free port — and talks to it over HTTP, exactly as
//! a client of `make dev` would. Stacks are independent, so tests run in parallel.
//!
//! The runner and the function binaries must be built first (`make test` does).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use serde_json::Value;

pub use reqwest::StatusCode;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Where cargo builds (and tests keep their scratch files).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// A running local stack; dropping it stops the runner, its functions and its emulator.
pub struct Stack {
    runner: Child,
    pub base_url: String,
    pub emulator: String,
    /// The WebSocket API (`ws://…`); its Management API and the runner's `/__local` controls are at the
    /// same address over HTTP.
    pub ws: String,
    /// The Toss stand-in's base URL (see infra/toss-standin for its `/__control` and `/__stats`).
    pub toss: String,
    pub log: PathBuf,
    http: reqwest::Client,
    /// The SDK configuration pointed at the emulator, loaded once.
    aws: tokio::sync::OnceCell<aws_config::SdkConfig>,
    /// Every answer of the API through [`Stack::send`], for [`Stack::answers`].
    answers: std::sync::Mutex<Vec<Value>>,
}

/// What a client saw.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The stable error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Stack {
    pub fn start() -> Stack {
        Self::start_with(&[])
    }

    /// A stack with template parameters overridden (`"MenuCacheSeconds=1"`).
    pub fn start_with(params: &[&str]) -> Stack {
        Self::start_scheduled(params, 1)
    }

    /// A stack whose scheduled functions (expiry, reconciliation) run every `seconds`.
    pub fn start_scheduled(params: &[&str], seconds: u32) -> Stack {
        Self::spawn(params, seconds, "info", "template.yaml")
    }

    /// A stack made from another template (a path from the repository's root): what a change to
    /// template.yaml would do.
    pub fn start_from(template: &str) -> Stack {
        Self::spawn(&[], 1, "info", template)
    }

    /// A stack whose functions are started with `RUST_LOG=<rust_log>` (as an operator could set it
    /// on a deployed function, whatever the template allows).
    pub fn start_logging(rust_log: &str) -> Stack {
        Self::spawn(&[], 1, rust_log, "template.yaml")
    }

    fn spawn(params: &[&str], seconds: u32, rust_log: &str, template: &str) -> Stack {
        // A test is one client address standing for many clients: per-client limits are lifted,
        // except where a test sets them (tests/limits.rs).
        let lifted = format!("RateLimits={}", shared::limits::Limits::lifted());
        let mut params = params.to_vec();
        if !params.iter().any(|p| p.starts_with("RateLimits=")) {
            params.push(&lifted);
        }
        let runner_bin = target_dir().join("debug/local-runner");
        assert!(
            runner_bin.exists(),
            "{} is missing: run `make test` (it builds every binary first)",
            runner_bin.display()
        );
        let logs = target_dir().join("e2e-logs");
        std::fs::create_dir_all(&logs).expect("create log dir");
        let log = logs.join(format!(
            "{}-{}.log",
            std::process::id(),
            uuid_like_counter()
        ));
        let log_file = std::fs::File::create(&log).expect("create log file");
        let mut runner = Command::new(runner_bin)
            .current_dir(root())
            .args(["--port", "0", "--template", template])
            .args(params.iter().flat_map(|p| ["--param", p]))
            // Scheduled functions run every few seconds, not every minute.
            .args(["--schedule-interval", &seconds.to_string()])
            // Spans in the logs too: tests read them, and search them for secrets.
            .arg("--trace")
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            // Its own process group, so that dropping the stack can stop everything it started.
            .process_group(0)
            .spawn()
            .expect("start local-runner");
        let stdout = runner.stdout.take().expect("runner stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let urls: Vec<&str> = line
            .split_whitespace()
            .filter(|w| w.starts_with("http://"))
            .map(|w| w.trim_end_matches(')'))
            .collect();
        let mut stack = Stack {
            runner,
            base_url: urls.first().copied().unwrap_or_default().to_owned(),
            emulator: urls
                .get(1)
                .copied()
                .unwrap_or_default()
                .trim_end_matches(',')
                .to_owned(),
            toss: urls.get(2).copied().unwrap_or_default().to_owned(),
            ws: line
                .split_whitespace()
                .find(|w| w.starts_with("ws://"))
                .unwrap_or_default()
                .trim_end_matches(',')
                .to_owned(),
            log: log.clone(),
            http: reqwest::Client::new(),
            aws: tokio::sync::OnceCell::new(),
            answers: std::sync::Mutex::new(Vec::new()),
        };
        if stack.base_url.is_empty() {
            stack.stop();
            panic!(
                "the local runner did not start; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        stack
    }

    fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's process group; no memory is involved.
        unsafe {
            libc::kill(-(self.runner.id() as i32), libc::SIGKILL);
        }
        let _ = self.runner.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let (client, request) = request.build_split();
        let request = request.expect("a well-formed request");
        let (method, url) = (request.method().clone(), request.url().clone());
        let response = client.execute(request).await.expect("the runner answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if url.as_str().starts_with(&self.base_url) {
            self.answers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(serde_json::json!({
                    "method": method.as_str(),
                    "path": url.path(),
                    "status": status.as_u16(),
                    "body": body,
                }));
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Every answer so far is as docs/openapi.yaml has it: a status its operation lists, a body
    /// its schema there accepts, and no field the document does not name (tests/documented.py,
    /// run with `.venv`'s Python). Every stack checks its answers as it goes (`Drop`).
    pub fn assert_answers_documented(&self) {
        assert_documented(&self.answers());
    }

    /// What the API answered through [`Stack::send`] so far, in order: `{method, path, status,
    /// body}` each (tests/documented.py checks them against docs/openapi.yaml).
    pub fn answers(&self) -> Vec<Value> {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// An SDK configuration pointed at this stack's emulator, for looking behind the API.
    pub async fn aws(&self) -> aws_config::SdkConfig {
        self.aws
            .get_or_init(|| {
                aws_config::defaults(BehaviorVersion::latest())
                    .endpoint_url(&self.emulator)
                    .region(aws_config::Region::new("ap-northeast-2"))
                    .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                        "test", "test", None, None, "e2e",
                    ))
                    .load()
            })
            .await
            .clone()
    }

    /// Every item of the table, for asserting what was (and was not) stored.
    pub async fn scan(
        &self,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let client = aws_sdk_dynamodb::Client::new(&self.aws().await);
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(TABLE)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan the table");
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// Signs up an account and signs in; returns (userId, accessToken, refreshToken).
    pub async fn account(&self, email: &str, role: &str) -> (String, String, String) {
        let signup = self
            .post(
                "/v1/auth/signup",
                &serde_json::json!({"email": email, "password": PASSWORD, "name": "Test User", "role": role}),
                None,
            )
            .await;
        assert_eq!(signup.status, StatusCode::CREATED, "{:?}", signup.body);
        let login = self.login(email, PASSWORD).await;
        assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
        (
            signup.body["userId"].as_str().unwrap().to_owned(),
            login.body["accessToken"].as_str().unwrap().to_owned(),
            login.body["refreshToken"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/v1/auth/login",
            &serde_json::json!({"email": email, "password": password}),
            None,
        )
        .await
    }
}

impl Drop for Stack {
    /// Every test's answers are checked against the document as its stack goes, unless the test
    /// failed already (its own failure is the one to read).
    fn drop(&mut self) {
        self.stop();
        let answers = self.answers();
        if !std::thread::panicking() && !answers.is_empty() {
            assert_documented(&answers);
        }
    }
}

/// `entries` (`{method, path, status, body}` answers, or `{schema, body}` messages) are as
/// docs/openapi.yaml has them (tests/documented.py).
fn assert_documented(entries: &[Value]) {
    let file = target_dir().join("e2e-logs").join(format!(
        "answers-{}-{}.json",
        std::process::id(),
        uuid_like_counter()
    ));
    std::fs::write(&file, serde_json::to_vec(entries).expect("answers as JSON"))
        .expect("write the answers");
    let output = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("tests/documented.py"))
        .arg(root().join("docs/openapi.yaml"))
        .arg(&file)
        .output()
        .expect("run tests/documented.py with .venv's Python (make bootstrap installs it)");
    assert!(
        output.status.success(),
        "answers not as docs/openapi.yaml has them ({}):\n{}{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The table name template.yaml gives the `dev` stage.
pub const TABLE: &str = "ordersync-dev";
/// A password that passes the strength rules.
pub const PASSWORD: &str = "kimchi-jjigae at 7pm";

fn uuid_like_counter() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

impl Stack {
    /// The id of the KMS key behind `alias`.
    pub async fn key_id(&self, alias: &str) -> String {
        let kms = aws_sdk_kms::Client::new(&self.aws().await);
        let aliases = kms.list_aliases().send().await.expect("list aliases");
        aliases
            .aliases()
            .iter()
            .find(|a| a.alias_name() == Some(alias))
            .and_then(|a| a.target_key_id())
            .unwrap_or_else(|| panic!("no key behind {alias}"))
            .to_owned()
    }

    /// Everything the functions and the runner logged so far. Lines reach the file a moment after
    /// the response reaches the client: use [`Stack::logs_with`] or [`Stack::settled_logs`].
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The logs, once they contain `needle` (waiting up to five seconds).
    pub async fn logs_with(&self, needle: &str) -> String {
        for _ in 0..50 {
            let logs = self.logs();
            if logs.contains(needle) {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.logs()
    }

    /// The logs once nothing has been added for a third of a second (at most five seconds): for
    /// asserting what they do not contain.
    pub async fn settled_logs(&self) -> String {
        let mut last = self.logs();
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(330)).await;
            let now = self.logs();
            if now.len() == last.len() {
                return now;
            }
            last = now;
        }
        last
    }
}

impl Stack {
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn put(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        self.send_json(reqwest::Method::PUT, path, Some(body), token)
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        self.send_json(reqwest::Method::PATCH, path, Some(body), token)
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send_json(reqwest::Method::DELETE, path, None, token)
            .await
    }

    /// Creates a store owned by the holder of `owner_token`; returns its id.
    pub async fn store(&self, owner_token: &str, extra: Value) -> String {
        let mut body = serde_json::json!({
            "name": "김밥천국 종로점", "phone": "02-123-4567", "address": "서울 종로구 종로 1"
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let reply = self.post("/v1/stores", &body, Some(owner_token)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["storeId"].as_str().unwrap().to_owned()
    }
}

/// The sum of one EMF metric over the lines `function` logged (in `logs`: [`Stack::logs`]).
pub fn metric_sum(logs: &str, function: &str, metric: &str) -> f64 {
    logs.lines()
        .filter(|l| l.starts_with(&format!("[{function}#")))
        .filter_map(|l| l.split_once("] ").map(|(_, json)| json))
        .filter_map(|json| serde_json::from_str::<Value>(json).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .filter_map(|doc| doc[metric].as_f64())
        .sum()
}

/// Waits, when fewer than `margin` seconds are left until the next edge of a fixed window — every
/// `period` seconds, the first `offset` seconds after the Unix epoch — until just past that edge.
/// A test whose counts must fall in one window (a rate limit's, a report's day) calls it before
/// its first counted request, so that its requests do not straddle the edge.
pub async fn clear_of_window_edge(period: u64, offset: u64, margin: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let left = period - (now + period - offset % period) % period;
    if left < margin {
        tokio::time::sleep(std::time::Duration::from_secs(left + 1)).await;
    }
}

/// [`clear_of_window_edge`] for a store's day in Seoul (midnight is 15:00 UTC), with five minutes
/// to spare: a test that reads the day's report after placing orders.
pub async fn clear_of_seoul_midnight() {
    clear_of_window_edge(86_400, 15 * 3_600, 300).await;
}

/// A randomized test's seed: the environment variable `var` when set (to replay a run), a fresh
/// one otherwise, printed as `var=<seed>` either way.
pub fn seed(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{var}={seed}");
    seed
}

/// The event id of an audit record's item: its sort key is `<time>#<eventId>` (the id is not
/// stored again).
pub fn audit_event_id(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> &str {
    text_of(item, "SK").split_once('#').map_or("", |(_, id)| id)
}

/// A text attribute of an item read from the table (`""` if it has none).
pub fn text_of<'a>(
    item: &'a std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    name: &str,
) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or("")
}

/// Opening hours for every day, around the clock.
pub fn always_open() -> Value {
    let day = serde_json::json!([{"open": "00:00", "close": "00:00"}]);
    serde_json::json!({"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day})
}

impl Stack {
    /// A store open around the clock with a small menu:
    /// kimbap 3,500 (size: regular 0 / large 1,000, required; toppings: cheese 500, tuna 800,
    /// egg 300, up to 2), latte 4,500 (shots: espresso 600, decaf 700, quantities up to 4),
    /// and a sold-out soldout 1,000.
    pub async fn open_store_with_menu(&self, owner: &str, settings: Value) -> String {
        let mut body = serde_json::json!({"weeklyHours": always_open()});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), settings.as_object()) {
            body.extend(extra.clone());
        }
        let store = self.store(owner, body).await;
        let base = format!("/v1/stores/{store}/menu");
        let put = |path: String, body: Value| async move {
            let reply = self.put(&path, &body, Some(owner)).await;
            assert!(reply.status.is_success(), "{path}: {:?}", reply.body);
        };
        put(
            format!("{base}/categories/main"),
            serde_json::json!({"name": "Main"}),
        )
        .await;
        put(format!("{base}/option-groups/size"), serde_json::json!({"name": "Size", "kind": "SINGLE_CHOICE",
            "required": true, "min": 1, "max": 1,
            "values": [{"id": "regular", "name": "Regular", "price": 0}, {"id": "large", "name": "Large", "price": 1000}]})).await;
        put(format!("{base}/option-groups/toppings"), serde_json::json!({"name": "Toppings", "kind": "MULTI_CHOICE",
            "min": 0, "max": 2, "values": [{"id": "cheese", "name": "Cheese", "price": 500},
            {"id": "tuna", "name": "Tuna", "price": 800}, {"id": "egg", "name": "Egg", "price": 300}]})).await;
        put(
            format!("{base}/option-groups/shots"),
            serde_json::json!({"name": "Shots", "kind": "QUANTITY",
            "min": 0, "max": 4, "values": [{"id": "espresso", "name": "Espresso", "price": 600},
            {"id": "decaf", "name": "Decaf", "price": 700}]}),
        )
        .await;
        put(
            format!("{base}/items/kimbap"),
            serde_json::json!({"categoryId": "main", "name": "원조김밥", "price": 3500,
            "optionGroupIds": ["size", "toppings"]}),
        )
        .await;
        put(
            format!("{base}/items/latte"),
            serde_json::json!({"categoryId": "main", "name": "Latte", "price": 4500,
            "optionGroupIds": ["shots"]}),
        )
        .await;
        put(
            format!("{base}/items/soldout"),
            serde_json::json!({"categoryId": "main", "name": "Gone", "price": 1000,
            "available": false}),
        )
        .await;
        store
    }

    /// A store open with the small menu, its owner, a staff member and a customer, named after `n`:
    /// (store, owner token, staff token, customer token).
    pub async fn staffed_store(&self, n: &str) -> (String, String, String, String) {
        let (_, owner, _) = self
            .account(&format!("owner-{n}@example.com"), "OWNER")
            .await;
        let (staff_id, staff, _) = self
            .account(&format!("staff-{n}@example.com"), "CUSTOMER")
            .await;
        let (_, customer, _) = self
            .account(&format!("customer-{n}@example.com"), "CUSTOMER")
            .await;
        let store = self
            .open_store_with_menu(&owner, serde_json::json!({}))
            .await;
        self.hire(&owner, &store, &staff_id, &staff).await;
        (store, owner, staff, customer)
    }

    /// `owner` invites user `user_id` to `store`'s staff and the user (`user_token`) accepts.
    pub async fn hire(&self, owner: &str, store: &str, user_id: &str, user_token: &str) {
        let invited = self
            .put(
                &format!("/v1/stores/{store}/staff/{user_id}"),
                &serde_json::json!({}),
                Some(owner),
            )
            .await;
        assert_eq!(invited.status.as_u16(), 202, "{:?}", invited.body);
        let accepted = self.accept_invitation(store, user_token).await;
        assert_eq!(accepted.status.as_u16(), 200, "{:?}", accepted.body);
        assert_eq!(accepted.body["status"], "STAFF");
    }

    /// The holder of `token` accepts `store`'s invitation, or is refused.
    pub async fn accept_invitation(&self, store: &str, token: &str) -> Reply {
        self.post(
            &format!("/v1/me/invitations/{store}/accept"),
            &serde_json::json!({}),
            Some(token),
        )
        .await
    }

    /// `POST /v1/stores` with `body` under the `Idempotency-Key` `key`, as the holder of `token`.
    pub async fn store_keyed(&self, token: &str, key: &str, body: &Value) -> Reply {
        self.send(
            self.http
                .post(self.url("/v1/stores"))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(body),
        )
        .await
    }

    /// An administrator's access token: an account made ADMIN behind the API, as an operator would.
    pub async fn admin(&self, email: &str) -> String {
        let (user_id, _, _) = self.account(email, "CUSTOMER").await;
        aws_sdk_dynamodb::Client::new(&self.aws().await)
            .update_item()
            .table_name(TABLE)
            .key(
                "PK",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{user_id}")),
            )
            .key(
                "SK",
                aws_sdk_dynamodb::types::AttributeValue::S("PROFILE".into()),
            )
            .update_expression("SET #role = :admin")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(
                ":admin",
                aws_sdk_dynamodb::types::AttributeValue::S("ADMIN".into()),
            )
            .send()
            .await
            .expect("make an admin");
        self.access_token(email).await
    }

    /// A fresh access token for the account `email` (its password is [`PASSWORD`]).
    pub async fn access_token(&self, email: &str) -> String {
        let login = self.login(email, PASSWORD).await;
        assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
        login.body["accessToken"].as_str().unwrap().to_owned()
    }

    /// Places an order as the customer holding `token`, with a fresh idempotency key.
    pub async fn order(&self, token: &str, body: &Value) -> Reply {
        let key = format!("test-{}", uuid_like_counter_global());
        self.order_keyed(token, &key, body).await
    }

    /// Places an order as the customer holding `token`, under the idempotency key `key`.
    pub async fn order_keyed(&self, token: &str, key: &str, body: &Value) -> Reply {
        self.send(
            self.http
                .post(self.url("/v1/orders"))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(body),
        )
        .await
    }

    /// Marks an order paid, as the payments flow will.
    pub async fn mark_paid(&self, order_id: &str) {
        let db = shared::storage::Db::new(aws_sdk_dynamodb::Client::new(&self.aws().await), TABLE);
        let order = shared::orders::find(&db, order_id)
            .await
            .unwrap()
            .expect("the order");
        shared::orders::transition(
            &db,
            &order,
            shared::orders::status::Status::Paid,
            shared::orders::status::Actor::System,
            None,
            Default::default(),
        )
        .await
        .expect("pay the order");
    }
}

fn uuid_like_counter_global() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A WebSocket client of the push API.
pub struct Pushes {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Every push received, checked against the document's `Push` as the socket goes (`Drop`).
    received: Vec<Value>,
}

impl Drop for Pushes {
    fn drop(&mut self) {
        if !std::thread::panicking() && !self.received.is_empty() {
            assert_documented(&self.received);
        }
    }
}

impl Pushes {
    /// The next push, if one arrives `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        use futures::StreamExt;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            if let Ok(tokio_tungstenite::tungstenite::Message::Text(text)) = frame {
                let push: Option<Value> = serde_json::from_str(text.as_str()).ok();
                self.received.push(serde_json::json!({
                    "schema": "Push",
                    "body": push.clone().unwrap_or_else(|| Value::String(text.to_string())),
                }));
                return push;
            }
        }
    }

    /// Every push that arrives until `quiet` passes without one.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut pushes = Vec::new();
        while let Some(push) = self.next(quiet).await {
            pushes.push(push);
        }
        pushes
    }

    /// Pushes until one of type `kind` arrives (within `within`); all of them, that one last.
    /// The pushes that came until one of each of `kinds` had, in whatever order they came.
    pub async fn until_each(&mut self, kinds: &[&str], within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut pushes: Vec<Value> = Vec::new();
        while !kinds
            .iter()
            .all(|kind| pushes.iter().any(|push| push["type"] == *kind))
        {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(push) = self.next(left).await else {
                panic!("not each of {kinds:?} pushed within {within:?}; got {pushes:?}");
            };
            pushes.push(push);
        }
        pushes
    }

    pub async fn until(&mut self, kind: &str, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut pushes = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(push) = self.next(left).await else {
                panic!("no {kind} push within {within:?}; got {pushes:?}");
            };
            let done = push["type"] == kind;
            pushes.push(push);
            if done {
                return pushes;
            }
        }
    }
}

impl Stack {
    /// Opens a push connection with `token` (as a bearer header), subscribed to `store` when given;
    /// the HTTP status of a refused handshake otherwise.
    pub async fn connect(&self, token: Option<&str>, store: Option<&str>) -> Result<Pushes, u16> {
        self.connect_as(token, store, None).await
    }

    /// [`Stack::connect`] as a board that names itself `device` (`?device=`).
    pub async fn connect_as(
        &self,
        token: Option<&str>,
        store: Option<&str>,
        device: Option<&str>,
    ) -> Result<Pushes, u16> {
        let query: Vec<String> = [("storeId", store), ("device", device)]
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
            .collect();
        let authorization = token.map(|token| format!("Bearer {token}"));
        self.connect_raw(&query.join("&"), authorization.as_deref())
            .await
    }

    /// Opens a push connection with `query` (without its `?`) and the `Authorization` header's
    /// value as given; the HTTP status of a refused handshake otherwise.
    pub async fn connect_raw(
        &self,
        query: &str,
        authorization: Option<&str>,
    ) -> Result<Pushes, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = match query.is_empty() {
            true => format!("{}/", self.ws),
            false => format!("{}/?{query}", self.ws),
        };
        let mut request = url.into_client_request().expect("a WebSocket URL");
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert("authorization", value.parse().expect("a header value"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Pushes {
                socket,
                received: Vec::new(),
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(err) => panic!("WebSocket connect failed: {err}"),
        }
    }

    /// Invokes function `name` (its template logical id) directly with `payload`; its result.
    pub async fn invoke(&self, name: &str, payload: &Value) -> Value {
        let (status, body) = self.invoke_raw(name, payload).await;
        assert!(status.is_success(), "{name}: {status} {body}");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// Invokes a function directly that is expected to fail; what it failed with.
    pub async fn invoke_failing(&self, name: &str, payload: &Value) -> String {
        let (status, body) = self.invoke_raw(name, payload).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{name}: {body}");
        body
    }

    async fn invoke_raw(&self, name: &str, payload: &Value) -> (StatusCode, String) {
        let url = self.local_url(&format!("functions/{name}/invoke"));
        let response = self
            .http
            .post(url)
            .json(payload)
            .send()
            .await
            .expect("invoke");
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    /// A local control of the runner: served over HTTP at the WebSocket API's address.
    fn local_url(&self, path: &str) -> String {
        format!("{}/__local/{path}", self.ws.replacen("ws://", "http://", 1))
    }

    /// Runs `work` with the runner's cost meter on (infra/runner/src/meter.rs); what it counted.
    pub async fn metered<F: std::future::Future<Output = ()>>(&self, work: F) -> Value {
        self.local("meter", &serde_json::json!({"on": true})).await;
        work.await;
        let reading = self.local_reading("meter", &[]).await;
        self.local("meter", &serde_json::json!({"on": false})).await;
        reading
    }

    /// What the meter has counted so far (inside [`Stack::metered`]'s work). The runner meters a
    /// write before it answers it, but the table shows the write first: work that waits on a
    /// consumer's writes polls this until they are counted.
    pub async fn meter_reading(&self) -> Value {
        self.local_reading("meter", &[]).await
    }

    /// Reads one of the runner's local controls (`meter`, `faults/aws`, `connections`).
    async fn local_reading(&self, path: &str, query: &[(&str, &str)]) -> Value {
        self.http
            .get(self.local_url(path))
            .query(query)
            .send()
            .await
            .expect("runner control")
            .json()
            .await
            .unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    /// The lane of `function`'s stream that the records of the item (`pk`, `sk`) take (its
    /// `ParallelizationFactor`): a failure holds back only the records of its own lane.
    pub async fn stream_lane(&self, function: &str, pk: &str, sk: &str) -> u64 {
        let path = format!("functions/{function}/lane");
        self.local_reading(&path, &[("pk", pk), ("sk", sk)]).await["lane"]
            .as_u64()
            .expect("a lane")
    }

    /// Calls one of the runner's local controls (`functions/<Name>/stop`, `faults`, …).
    pub async fn local(&self, path: &str, body: &Value) {
        let url = self.local_url(path);
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .expect("runner control");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
}

/// The ledger, as docs/PAYMENTS.md states it, checked against the table and Toss's own books.
impl Stack {
    /// Sets the Toss stand-in's behaviour (see infra/toss-standin).
    pub async fn toss_control(&self, control: Value) {
        let reply = self
            .http
            .post(format!("{}/__control", self.toss))
            .json(&control)
            .send()
            .await
            .expect("the Toss stand-in answers");
        assert!(reply.status().is_success(), "{}", reply.status());
    }

    /// Every payment Toss holds, every cancel it executed, its webhook deliveries.
    pub async fn toss_ledger(&self) -> Value {
        self.http
            .get(format!("{}/__ledger", self.toss))
            .send()
            .await
            .expect("the Toss stand-in answers")
            .json()
            .await
            .expect("a ledger")
    }

    fn db_with(&self, config: &aws_config::SdkConfig) -> shared::storage::Db {
        shared::storage::Db::new(aws_sdk_dynamodb::Client::new(config), TABLE)
    }

    /// The refunds of an order, as stored.
    pub async fn refunds(&self, order_id: &str) -> Vec<shared::payments::refunds::RefundRecord> {
        refunds_in(&self.db_with(&self.aws().await), order_id).await
    }

    /// The store's menu, as stored (not the public read's cached rendering).
    pub async fn menu_record(&self, store_id: &str) -> shared::menus::MenuRecord {
        let db = self.db_with(&self.aws().await);
        shared::menus::load(&db, store_id)
            .await
            .expect("read the menu")
            .expect("the store has a menu")
    }

    /// The order's payment record, as stored.
    pub async fn payment(&self, order_id: &str) -> Option<shared::payments::PaymentRecord> {
        let db = self.db_with(&self.aws().await);
        shared::payments::find(&db, order_id)
            .await
            .expect("read the payment")
    }

    /// Waits (up to `within`) until none of `orders` has an open payment or a pending refund: the
    /// reconciler has settled everything. The orders still unsettled, if any.
    pub async fn settled(&self, orders: &[String], within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        let db = self.db_with(&self.aws().await);
        loop {
            let mut open = Vec::new();
            for order in orders {
                let payment = shared::payments::find(&db, order).await.expect("read");
                let payment_open = payment.is_some_and(|p| {
                    p.state.is_open() && p.state != shared::payments::PaymentState::AwaitingDeposit
                });
                let refund_pending = refunds_in(&db, order)
                    .await
                    .iter()
                    .any(|r| r.state == shared::payments::refunds::RefundState::Pending);
                if payment_open || refund_pending {
                    open.push(order.clone());
                }
            }
            if open.is_empty() || tokio::time::Instant::now() >= deadline {
                return open;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The ledger's invariant for each of `orders`, once settled; every violation, described.
    ///
    /// - An order is paid (PAID … COMPLETED) exactly when Toss holds a DONE (or partly cancelled)
    ///   payment for it with its id, the key on record and its amount; Toss's balance is the total
    ///   minus our DONE refunds, and our record says so.
    /// - A rejected or cancelled paid order is refunded in full: balance 0, refunds = total.
    /// - An order never paid (PENDING_PAYMENT, EXPIRED, CANCELED unpaid) leaves no money at Toss.
    /// - Toss ran at most one confirm per order; every cancel named its amount; Toss's cancels of an
    ///   order add up to our DONE refunds and voids, so nothing was cancelled for a live order but
    ///   the owner's refunds.
    pub async fn ledger_violations(&self, orders: &[String]) -> Vec<String> {
        use shared::orders::status::Status;
        use shared::payments::PaymentState;
        use shared::payments::refunds::RefundState;
        let db = self.db_with(&self.aws().await);
        let toss = self.toss_ledger().await;
        let mut violations = Vec::new();
        for order_id in orders {
            let mut fail = |what: String| violations.push(format!("{order_id}: {what}"));
            let Some(order) = shared::orders::find(&db, order_id).await.expect("read") else {
                fail("no such order".into());
                continue;
            };
            let record = shared::payments::find(&db, order_id).await.expect("read");
            let refunds = refunds_in(&db, order_id).await;
            let refunded: i64 = refunds
                .iter()
                .filter(|r| r.state == RefundState::Done)
                .map(|r| r.amount)
                .sum();
            if refunds.iter().any(|r| r.state == RefundState::Pending) {
                fail("a refund is still pending".into());
            }
            let payments: Vec<&Value> = toss["payments"]
                .as_array()
                .expect("payments")
                .iter()
                .filter(|p| p["orderId"] == order_id.as_str())
                .collect();
            let executed: Vec<&Value> = payments
                .iter()
                .copied()
                .filter(|p| {
                    matches!(
                        p["status"].as_str(),
                        Some("DONE" | "PARTIAL_CANCELED" | "CANCELED")
                    )
                })
                .collect();
            let held: Vec<&Value> = executed
                .iter()
                .copied()
                .filter(|p| p["balanceAmount"].as_i64().unwrap_or(0) > 0)
                .collect();
            let confirms = toss["confirmsByOrder"][order_id.as_str()]
                .as_u64()
                .unwrap_or(0);
            if confirms > 1 {
                fail(format!("Toss ran {confirms} confirms"));
            }
            let cancels: Vec<&Value> = toss["cancels"]
                .as_array()
                .expect("cancels")
                .iter()
                .filter(|c| c["orderId"] == order_id.as_str())
                .collect();
            if cancels.iter().any(|c| c["amountGiven"] != true) {
                fail("a cancel was sent without its amount".into());
            }
            let cancelled: i64 = cancels.iter().filter_map(|c| c["amount"].as_i64()).sum();
            let live = matches!(
                order.status,
                Status::Paid
                    | Status::Accepted
                    | Status::Preparing
                    | Status::Ready
                    | Status::Completed
            );
            let was_paid = record
                .as_ref()
                .is_some_and(|r| matches!(r.state, PaymentState::Done | PaymentState::Canceled));
            if record
                .as_ref()
                .is_some_and(|r| r.state.is_open() && r.state != PaymentState::AwaitingDeposit)
            {
                fail(format!(
                    "the payment is still {}",
                    record.as_ref().map(|r| r.state.name()).unwrap_or("")
                ));
            }
            if live || was_paid {
                let Some(record) = record.as_ref().filter(|_| was_paid) else {
                    fail(format!("{} without a settled payment", order.status.name()));
                    continue;
                };
                let ours: Vec<&&Value> = executed
                    .iter()
                    .filter(|p| record.is_key(p["paymentKey"].as_str().unwrap_or("")))
                    .collect();
                let [payment] = ours.as_slice() else {
                    fail(format!(
                        "{} payments at Toss with the key on record",
                        ours.len()
                    ));
                    continue;
                };
                if payment["totalAmount"] != order.total {
                    fail(format!(
                        "Toss took {} for {}",
                        payment["totalAmount"], order.total
                    ));
                }
                let balance = payment["balanceAmount"].as_i64().unwrap_or(-1);
                if balance != order.total - refunded {
                    fail(format!(
                        "Toss holds {balance}, the total less our refunds is {}",
                        order.total - refunded
                    ));
                }
                if record.balance_amount != Some(balance) {
                    fail(format!(
                        "our record says {:?} is left, Toss {balance}",
                        record.balance_amount
                    ));
                }
                if held.len() != usize::from(balance > 0) || executed.len() != 1 {
                    fail(format!("Toss holds {} executed payments", executed.len()));
                }
                if cancelled != refunded {
                    fail(format!(
                        "Toss cancelled {cancelled}, we refunded {refunded}"
                    ));
                }
                if !live && balance != 0 {
                    fail(format!(
                        "{} but {balance} not refunded",
                        order.status.name()
                    ));
                }
                let all_refunded = record.state == PaymentState::Canceled;
                if all_refunded != (balance == 0) {
                    fail(format!(
                        "{balance} left, but the payment is {}",
                        record.state.name()
                    ));
                }
            } else {
                if !held.is_empty() {
                    fail(format!(
                        "never paid ({}), but Toss holds {}",
                        order.status.name(),
                        held.iter()
                            .filter_map(|p| p["balanceAmount"].as_i64())
                            .sum::<i64>()
                    ));
                }
                let taken: i64 = executed
                    .iter()
                    .filter_map(|p| p["totalAmount"].as_i64())
                    .sum();
                if cancelled != taken {
                    fail(format!("Toss took {taken} and gave back {cancelled}"));
                }
                if refunded != 0 {
                    fail(format!("refunds of {refunded} for an order never paid"));
                }
            }
        }
        violations
    }
}

/// The refunds of an order, as stored.
async fn refunds_in(
    db: &shared::storage::Db,
    order_id: &str,
) -> Vec<shared::payments::refunds::RefundRecord> {
    let out = db
        .client()
        .query()
        .table_name(TABLE)
        .key_condition_expression("PK = :pk AND begins_with(SK, :refund)")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("PAYMENT#{order_id}")),
        )
        .expression_attribute_values(
            ":refund",
            aws_sdk_dynamodb::types::AttributeValue::S("REFUND#".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("query refunds");
    out.items
        .unwrap_or_default()
        .into_iter()
        .map(|item| shared::storage::from_item(item).expect("a refund"))
        .collect()
}

/// An order and its payment, ready for the money path's tests.
pub struct LatteOrder {
    pub customer: String,
    pub order: String,
    pub owner: String,
}

impl Stack {
    /// A store with the small menu and a customer's fresh, unpaid 9,000 KRW order (two lattes),
    /// their accounts named after `n`.
    pub async fn latte_order(&self, n: &str) -> LatteOrder {
        self.latte_order_with(n, serde_json::json!({"type": "PICKUP"}), None)
            .await
    }

    /// [`Stack::latte_order`] with the given `fulfilment` and `note`.
    pub async fn latte_order_with(
        &self,
        n: &str,
        fulfilment: serde_json::Value,
        note: Option<&str>,
    ) -> LatteOrder {
        let (_, owner, _) = self
            .account(&format!("owner-{n}@example.com"), "OWNER")
            .await;
        let (_, customer, _) = self
            .account(&format!("customer-{n}@example.com"), "CUSTOMER")
            .await;
        let store = self
            .open_store_with_menu(&owner, serde_json::json!({}))
            .await;
        let mut body = serde_json::json!({"storeId": store,
            "items": [{"itemId": "latte", "quantity": 2}], "fulfilment": fulfilment,
            "phone": "010-2222-3333"});
        if let Some(note) = note {
            body["note"] = note.into();
        }
        let order = self.order(&customer, &body).await;
        assert_eq!(order.body["total"], 9000, "{:?}", order.body);
        LatteOrder {
            customer,
            order: order.body["orderId"]
                .as_str()
                .expect("an order id")
                .to_owned(),
            owner,
        }
    }

    /// [`Stack::latte_order`], paid with the key `tpk_<n>`.
    pub async fn paid_latte_order(&self, n: &str) -> LatteOrder {
        let latte = self.latte_order(n).await;
        self.pay(&latte, n).await;
        latte
    }

    /// Pays `latte` with the key `tpk_<n>`.
    pub async fn pay(&self, latte: &LatteOrder, n: &str) {
        let paid = self
            .post(
                "/v1/payments/confirm",
                &serde_json::json!({"orderId": latte.order, "paymentKey": format!("tpk_{n}"),
                    "amount": 9000}),
                Some(&latte.customer),
            )
            .await;
        assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    }

    /// The owner's partial refund of `amount`, named by the idempotency key `key`.
    pub async fn refund(&self, owner: &str, order: &str, key: &str, amount: i64) -> Reply {
        self.send(
            self.http
                .post(self.url(&format!("/v1/orders/{order}/refunds")))
                .bearer_auth(owner)
                .header("idempotency-key", key)
                .json(&serde_json::json!({"amount": amount, "reason": "cold soup"})),
        )
        .await
    }

    /// Kills every instance of the function mid-invocation, as a crash would, and lets it start again.
    pub async fn crash(&self, function: &str) {
        self.local(
            &format!("functions/{function}/stop"),
            &serde_json::json!({}),
        )
        .await;
        self.local(
            &format!("functions/{function}/start"),
            &serde_json::json!({}),
        )
        .await;
    }

    /// A Toss payment session for a virtual account, as the widget makes one when the customer
    /// chooses it.
    pub async fn virtual_account_session(&self, order: &str, payment_key: &str) {
        let made = self
            .http
            .post(format!("{}/__sessions", self.toss))
            .json(
                &serde_json::json!({"paymentKey": payment_key, "orderId": order, "amount": 9000,
                "method": "VIRTUAL_ACCOUNT"}),
            )
            .send()
            .await
            .expect("the Toss stand-in answers");
        assert!(made.status().is_success());
    }
}

/// The local stack's fault switchboards (infra/runner: `front.rs`, `websocket.rs`).
impl Stack {
    /// Replaces the AWS fault rules (see infra/runner/src/front.rs); `json!([])` clears them.
    pub async fn aws_faults(&self, rules: Value) {
        self.local(
            "faults/aws",
            &serde_json::json!({"rules": rules, "seed": 7}),
        )
        .await;
    }

    /// Every event the table tells of, as JSON: the outbox's items, each order's latest move and
    /// each session's sign-in (an order's earlier moves are in its stream records only; read them
    /// before it moves on). What `events-replay` would record.
    pub async fn events(&self) -> Vec<Value> {
        self.scan()
            .await
            .into_iter()
            .filter_map(shared::events::stream::told_by)
            .map(|event| serde_json::to_value(event).expect("an event's JSON"))
            .collect()
    }

    /// The events of one type (`order.paid`, …) the table tells of ([`Stack::events`]).
    pub async fn events_of(&self, kind: &str) -> Vec<Value> {
        let mut events = self.events().await;
        events.retain(|e| e["type"] == kind);
        events
    }

    /// The AWS fault rules, with how often each fired.
    pub async fn aws_faults_fired(&self) -> Value {
        self.local_reading("faults/aws", &[]).await
    }

    /// The ids of the open WebSocket connections, oldest first.
    pub async fn connection_ids(&self) -> Vec<String> {
        self.local_reading("connections", &[]).await["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .filter_map(|c| c["connectionId"].as_str().map(String::from))
            .collect()
    }
}
