//! Runs functions the way Lambda does: each instance is the real binary, started on demand, polling a
//! Lambda Runtime API (served here on loopback) for one event at a time. A busy function gets more
//! instances, up to a cap; an instance that exits or overruns its timeout is dropped and replaced.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::stack::FunctionSpec;

/// Instances per function at most; plenty for tests that race requests, small enough for 2 cores.
const MAX_INSTANCES: usize = 8;

pub enum Outcome {
    Response(Bytes),
    /// The function reported an error, crashed, or timed out.
    Failed(String),
    TimedOut,
}

struct Invocation {
    request_id: String,
    payload: Bytes,
    deadline: Duration,
    trace_id: String,
    reply: oneshot::Sender<Outcome>,
}

struct InFlight {
    instance: u32,
    reply: oneshot::Sender<Outcome>,
    /// When the instance took it: Lambda bills from there (not the wait for an instance).
    taken: std::time::Instant,
}

pub struct Function {
    pub spec: FunctionSpec,
    index: usize,
    queue: mpsc::UnboundedSender<Invocation>,
    next: Mutex<mpsc::UnboundedReceiver<Invocation>>,
    /// Invocations sent but not yet taken by an instance.
    queued: AtomicUsize,
    in_flight: Mutex<HashMap<String, InFlight>>,
    /// Kill switches of live instances.
    instances: Mutex<HashMap<u32, oneshot::Sender<()>>>,
    /// Taken down on purpose (see [`Function::stop`]): invocations fail until it is started again.
    stopped: AtomicBool,
}

impl Function {
    /// Takes the function down as a crash would: live instances are killed mid-invocation and new
    /// invocations fail, until [`Function::start`].
    pub async fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for (_, kill) in self.instances.lock().await.drain() {
            let _ = kill.send(());
        }
    }

    pub fn start(&self) {
        self.stopped.store(false, Ordering::SeqCst);
    }
}

pub struct Runtime {
    pub functions: Vec<Arc<Function>>,
    bin_dir: PathBuf,
    base_env: Vec<(String, String)>,
    /// `host:port` of the runtime API server.
    api_addr: std::sync::OnceLock<String>,
    next_instance: AtomicU32,
}

impl Runtime {
    pub fn new(
        specs: Vec<FunctionSpec>,
        bin_dir: PathBuf,
        base_env: Vec<(String, String)>,
    ) -> Arc<Self> {
        let functions = specs
            .into_iter()
            .enumerate()
            .map(|(index, spec)| {
                let (queue, next) = mpsc::unbounded_channel();
                Arc::new(Function {
                    spec,
                    index,
                    queue,
                    next: Mutex::new(next),
                    queued: AtomicUsize::new(0),
                    in_flight: Mutex::new(HashMap::new()),
                    instances: Mutex::new(HashMap::new()),
                    stopped: AtomicBool::new(false),
                })
            })
            .collect();
        Arc::new(Self {
            functions,
            bin_dir,
            base_env,
            api_addr: std::sync::OnceLock::new(),
            next_instance: AtomicU32::new(1),
        })
    }

    pub fn set_api_addr(&self, addr: String) {
        let _ = self.api_addr.set(addr);
    }

    pub fn missing_binaries(&self) -> Vec<PathBuf> {
        self.functions
            .iter()
            .map(|f| self.bin_dir.join(&f.spec.binary))
            .filter(|p| !p.exists())
            .collect()
    }

    /// Invokes `function` with `payload` and waits for its outcome.
    pub async fn invoke(
        self: &Arc<Self>,
        function: &Arc<Function>,
        payload: Bytes,
        request_id: String,
        trace_id: String,
    ) -> Outcome {
        if function.stopped.load(Ordering::SeqCst) {
            return Outcome::Failed("the function is stopped".into());
        }
        let deadline = Duration::from_secs(function.spec.timeout);
        let (reply, outcome) = oneshot::channel();
        // Start an instance only when every live one already has work, as Lambda scales.
        let outstanding =
            function.queued.load(Ordering::SeqCst) + function.in_flight.lock().await.len() + 1;
        let live = function.instances.lock().await.len();
        if live < outstanding && live < MAX_INSTANCES {
            self.spawn_instance(function).await;
        }
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload,
            deadline,
            trace_id,
            reply,
        };
        function.queued.fetch_add(1, Ordering::SeqCst);
        if function.queue.send(invocation).is_err() {
            return Outcome::Failed("function queue closed".into());
        }
        // The clock starts at dispatch; a cold start counts against the timeout as on Lambda.
        let finished = tokio::time::timeout(deadline + Duration::from_secs(2), outcome).await;
        match finished {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Failed("the instance went away".into()),
            Err(_) => {
                if let Some(flight) = function.in_flight.lock().await.remove(&request_id)
                    && let Some(kill) = function.instances.lock().await.remove(&flight.instance)
                {
                    let _ = kill.send(());
                }
                Outcome::TimedOut
            }
        }
    }

    /// Invokes `function` as an event source or an operator does: a fresh request id, no trace.
    pub async fn invoke_event(
        self: &Arc<Self>,
        function: &Arc<Function>,
        payload: Bytes,
    ) -> Outcome {
        self.invoke(
            function,
            payload,
            uuid::Uuid::new_v4().to_string(),
            String::new(),
        )
        .await
    }

    async fn spawn_instance(self: &Arc<Self>, function: &Arc<Function>) {
        let id = self.next_instance.fetch_add(1, Ordering::SeqCst);
        let spec = &function.spec;
        let api = format!(
            "http://{}/fn/{}/{}",
            self.api_addr
                .get()
                .map(String::as_str)
                .unwrap_or("127.0.0.1:0"),
            function.index,
            id
        );
        let mut command = Command::new(self.bin_dir.join(&spec.binary));
        command
            .env_clear()
            .envs(self.base_env.iter().cloned())
            .envs(spec.env.iter())
            .env("AWS_LAMBDA_RUNTIME_API", api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{id}"))
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("_HANDLER", "bootstrap")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The log level, and whether each line reports its allocations (`make bench`;
        // `shared::heap::REPORT_VAR`), as the runner was given them.
        for var in ["RUST_LOG", "ORDERSYNC_COUNT_ALLOCATIONS"] {
            if let Some(value) = std::env::var_os(var) {
                command.env(var, value);
            }
        }
        // --trace: the functions' span lines (debug, target `spans`) are shown.
        if self.base_env.iter().any(|(k, _)| k == "ORDERSYNC_TRACE") {
            let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
            command.env("RUST_LOG", format!("{level},spans=debug"));
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                eprintln!("[{}] cannot start {}: {err}", spec.name, spec.binary);
                return;
            }
        };
        let label = format!("{}#{id}", spec.name);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(label.clone(), spec.name.clone(), out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(label.clone(), spec.name.clone(), err));
        }
        let (kill, killed) = oneshot::channel::<()>();
        function.instances.lock().await.insert(id, kill);
        let function = function.clone();
        tokio::spawn(async move {
            tokio::select! {
                status = child.wait() => {
                    if let Ok(status) = status && !status.success() {
                        eprintln!("[{label}] exited: {status}");
                    }
                }
                _ = killed => {
                    eprintln!("[{label}] killed (timed out or stopped)");
                    let _ = child.kill().await;
                }
            }
            function.instances.lock().await.remove(&id);
            // Whatever this instance was doing will never finish.
            let mut in_flight = function.in_flight.lock().await;
            let lost: Vec<String> = in_flight
                .iter()
                .filter(|(_, f)| f.instance == id)
                .map(|(k, _)| k.clone())
                .collect();
            for request_id in lost {
                if let Some(flight) = in_flight.remove(&request_id) {
                    let _ = flight
                        .reply
                        .send(Outcome::Failed("the instance exited".into()));
                }
            }
            drop(in_flight);
            // With no instance left, queued events would wait for their timeout: a function that
            // cannot start fails them now, as Lambda answers an init failure.
            if function.instances.lock().await.is_empty()
                && let Ok(mut queue) = function.next.try_lock()
            {
                while let Ok(invocation) = queue.try_recv() {
                    function.queued.fetch_sub(1, Ordering::SeqCst);
                    let _ = invocation
                        .reply
                        .send(Outcome::Failed("the function failed to start".into()));
                }
            }
        });
    }

    /// Serves the Lambda Runtime API under `/fn/{function}/{instance}/2018-06-01/runtime/...`.
    pub async fn serve_runtime_api(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_owned();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (function, instance, rest) = match parts.as_slice() {
            ["fn", f, i, "2018-06-01", "runtime", rest @ ..] => {
                match (f.parse::<usize>(), i.parse::<u32>()) {
                    (Ok(f), Ok(i)) if f < self.functions.len() => {
                        (self.functions[f].clone(), i, rest.to_vec())
                    }
                    _ => return Ok(plain(StatusCode::NOT_FOUND, "unknown function")),
                }
            }
            _ => return Ok(plain(StatusCode::NOT_FOUND, "not a runtime API path")),
        };
        let method = req.method().clone();
        let body = body_bytes(req).await;
        Ok(match (method, rest.as_slice()) {
            (Method::GET, ["invocation", "next"]) => next_invocation(&function, instance).await,
            (Method::POST, ["invocation", id, "response"]) => {
                complete(&function, id, Outcome::Response(body)).await
            }
            (Method::POST, ["invocation", id, "error"]) => {
                let text = String::from_utf8_lossy(&body).into_owned();
                eprintln!(
                    "[{}#{instance}] invocation error: {text}",
                    function.spec.name
                );
                complete(&function, id, Outcome::Failed(text)).await
            }
            (Method::POST, ["init", "error"]) => {
                eprintln!(
                    "[{}#{instance}] init error: {}",
                    function.spec.name,
                    String::from_utf8_lossy(&body)
                );
                plain(StatusCode::ACCEPTED, "")
            }
            _ => plain(StatusCode::NOT_FOUND, "unknown runtime API call"),
        })
    }
}

async fn next_invocation(function: &Arc<Function>, instance: u32) -> Response<Full<Bytes>> {
    let Some(invocation) = function.next.lock().await.recv().await else {
        return plain(StatusCode::GONE, "shutting down");
    };
    // A killed instance's long poll can outlive it and take the next invocation: hand that back
    // to the queue for a live instance, or it would be lost with the dead one.
    if !function.instances.lock().await.contains_key(&instance) {
        let _ = function.queue.send(invocation);
        return plain(StatusCode::GONE, "this instance was stopped");
    }
    function.queued.fetch_sub(1, Ordering::SeqCst);
    let deadline_ms = (SystemTime::now() + invocation.deadline)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    function.in_flight.lock().await.insert(
        invocation.request_id.clone(),
        InFlight {
            instance,
            reply: invocation.reply,
            taken: std::time::Instant::now(),
        },
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &invocation.request_id)
        .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
        .header(
            "lambda-runtime-invoked-function-arn",
            format!(
                "arn:aws:lambda:ap-northeast-2:123456789012:function:{}",
                function.spec.name
            ),
        )
        .header("lambda-runtime-trace-id", &invocation.trace_id)
        .body(Full::new(invocation.payload))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "bad invocation"))
}

async fn complete(
    function: &Arc<Function>,
    request_id: &str,
    outcome: Outcome,
) -> Response<Full<Bytes>> {
    match function.in_flight.lock().await.remove(request_id) {
        Some(flight) => {
            crate::meter::invocation(
                &function.spec.name,
                function.spec.memory,
                flight.taken.elapsed().as_secs_f64(),
                &function.spec.logging,
                function.spec.traced(),
            );
            let _ = flight.reply.send(outcome);
            plain(StatusCode::ACCEPTED, "")
        }
        None => plain(StatusCode::BAD_REQUEST, "unknown request id"),
    }
}

/// A request's whole body (empty if it cannot be read).
pub async fn body_bytes(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

pub fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Shows a function's output, labelled with its instance; each line is a log event in
/// CloudWatch, metered.
async fn forward_lines(label: String, function: String, stream: impl tokio::io::AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        crate::meter::log_line(&function, &line);
        eprintln!("[{label}] {line}");
    }
}
