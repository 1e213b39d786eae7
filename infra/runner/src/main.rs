//! The local runner: OrderSync's whole system on one machine, with no cloud account and no Docker.
//!
//! It starts moto's server (DynamoDB, KMS, SQS, S3) on loopback, creates template.yaml's resources on
//! it, and serves every `HttpApi` route of template.yaml on http://127.0.0.1:3000 (`--port` or `PORT`
//! overrides; 0 picks a free port) by invoking the route's real function binary through a Lambda
//! Runtime API, with the event API Gateway would send. The WebSocket API and its Management API are
//! served on the next port (`--ws-port`); the table's stream and the SQS queues are polled and their
//! consumers invoked as Lambda's event source mappings would. When ready it prints one line:
//!
//! ```text
//! OrderSync local API on http://127.0.0.1:3000 (WebSocket ws://127.0.0.1:3001, AWS emulator http://127.0.0.1:41234, Toss stand-in http://127.0.0.1:41235) — order board: http://127.0.0.1:3000/app/
//! ```

mod cors;
mod dynamodb_items;
mod front;
mod gateway;
mod iam;
mod key_limits;
mod lambda;
mod meter;
mod queues;
mod sources;
mod stack;
mod streams;
mod web;
mod websocket;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const USAGE: &str = "\
usage: local-runner [--port N] [--ws-port N] [--template PATH] [--bin-dir DIR] [--endpoint URL] [--env-file PATH]
                    [--param NAME=VALUE]... [--schedule-interval SECONDS] [--trace] [--keep-alive]

  --port N         port of the HTTP API (default: $PORT or 3000; 0 picks a free one)
  --ws-port N      port of the WebSocket and Management APIs (default: the next port; 0 with --port 0)
  --template PATH  SAM template to serve (default: template.yaml)
  --bin-dir DIR    where the function binaries are (default: target/debug)
  --endpoint URL   use this AWS emulator instead of starting moto's server
  --env-file PATH  write the functions' environment there, for `cargo lambda watch --env-file`
  --param N=V      override template parameter N (repeatable)
  --schedule-interval S  let a minute of schedules last S seconds (every-minute jobs run every S)
  --trace          print each request's spans: the handler, every AWS and Toss call, with durations
  --keep-alive     (the default now) functions keep their connections to the emulator open, as
                   AWS's do (moto closes each one): their fronts forward each call";

struct Args {
    port: u16,
    ws_port: Option<u16>,
    template: PathBuf,
    bin_dir: Option<PathBuf>,
    endpoint: Option<String>,
    env_file: Option<PathBuf>,
    /// Template parameter overrides, `NAME=VALUE`.
    params: Vec<String>,
    /// Run scheduled functions this often instead of at their rate.
    schedule_interval: Option<std::time::Duration>,
    /// Show every request's spans (handler, AWS and Toss calls).
    trace: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(3000),
        ws_port: None,
        template: PathBuf::from("template.yaml"),
        bin_dir: None,
        endpoint: None,
        env_file: None,
        params: Vec::new(),
        schedule_interval: None,
        trace: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse().map_err(|_| "--port needs a number")?,
            "--ws-port" => {
                args.ws_port = Some(value()?.parse().map_err(|_| "--ws-port needs a number")?)
            }
            "--template" => args.template = PathBuf::from(value()?),
            "--bin-dir" => args.bin_dir = Some(PathBuf::from(value()?)),
            "--endpoint" => args.endpoint = Some(value()?),
            "--env-file" => args.env_file = Some(PathBuf::from(value()?)),
            "--param" => args.params.push(value()?),
            "--trace" => args.trace = true,
            // Accepted for the benchmark's sake: every function has a keep-alive front now.
            "--keep-alive" => {}
            "--schedule-interval" => {
                let seconds: f64 = value()?
                    .parse()
                    .map_err(|_| "--schedule-interval needs seconds")?;
                args.schedule_interval = Some(std::time::Duration::from_secs_f64(seconds));
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("local-runner: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let template = std::fs::canonicalize(&args.template)
        .map_err(|e| format!("{}: {e}", args.template.display()))?;
    // The project: the template's directory, or the nearest above it with the local stack's tools
    // (a test's variant of the template may sit under `target/`).
    let root = template
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("infra/local/provision.py").exists())
        .map(PathBuf::from)
        .ok_or("neither the template's directory nor any above it holds infra/local/")?;
    let bin_dir = args.bin_dir.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("debug")
    });

    // Both ports first: a port in use is said at once, before the emulator starts and the stack is
    // provisioned. The WebSocket API is served on the next port; functions that post to
    // connections are pointed at it.
    let ws_port = args.ws_port.unwrap_or(if args.port == 0 {
        0
    } else {
        args.port.saturating_add(1)
    });
    let api_listener = listen(args.port).await?;
    let ws_listener = listen(ws_port).await?;

    // The emulator child is killed when `_emulator` drops, on every way out of this function.
    let (_emulator, endpoint) = match args.endpoint {
        Some(endpoint) => (None, endpoint),
        None => {
            let (child, endpoint) = stack::start_emulator(&root).await?;
            (Some(child), endpoint)
        }
    };
    // Toss cannot be reached from here: unless told where Toss is, the stack runs the stand-in.
    let mut params = args.params.clone();
    let (_toss, toss_url) = if params.iter().any(|p| p.starts_with("TossApiBase=")) {
        (None, None)
    } else {
        let (child, url) = stack::start_toss_standin(&bin_dir).await?;
        params.push(format!("TossApiBase={url}"));
        if !params.iter().any(|p| p.starts_with("TossSecretKey=")) {
            params.push("TossSecretKey=test_sk_local_standin".to_owned());
        }
        (Some(child), Some(url))
    };
    // The emulator answers in tens of milliseconds, and in seconds under a test's load, where
    // DynamoDB answers in a few: unless told otherwise, the local stack gives AWS calls more time.
    for (name, local) in [
        ("AwsAttemptTimeoutMs", "15000"),
        ("AwsOperationTimeoutMs", "25000"),
    ] {
        if !params.iter().any(|p| p.starts_with(&format!("{name}="))) {
            params.push(format!("{name}={local}"));
        }
    }
    let mut manifest = stack::provision(&root, &template, &endpoint, &params).await?;

    let ws_addr = ws_listener.local_addr().map_err(|e| e.to_string())?;
    let stage = params
        .iter()
        .find_map(|p| p.strip_prefix("Stage="))
        .unwrap_or("dev")
        .to_owned();

    let manifest_region = manifest.region.clone();
    let manifest_cors = manifest.cors.take();
    meter::table_classes(std::mem::take(&mut manifest.table_classes));
    // Every function reaches the emulator through a front of its own: connections kept open, as
    // AWS's are, and AWS's failures can be switched on (`/__local/faults/aws`).
    let grants = manifest
        .functions
        .iter()
        .map(|f| (f.name.clone(), f.grants.clone()))
        .collect();
    let front = front::Front::new(&endpoint, &format!("http://{ws_addr}"), grants);
    let fronts = front::bind_all(&front, manifest.functions.iter().map(|f| f.name.clone())).await?;
    let functions_endpoint = fronts["local"].clone();
    // The Management API the template names, reached through the caller's front (which checks
    // its grants and forwards to the WebSocket API served here); the env file's, through the
    // tools' front.
    let mut tools_websocket = None;
    for function in &mut manifest.functions {
        if let Some(url) = fronts.get(&function.name) {
            function
                .env
                .insert("AWS_ENDPOINT_URL".to_owned(), url.clone());
            if let Some(endpoint) = function.env.get_mut("WEBSOCKET_ENDPOINT") {
                tools_websocket = Some(management_endpoint(endpoint, &functions_endpoint));
                *endpoint = management_endpoint(endpoint, url);
            }
        }
    }
    let mut base_env = vec![
        ("AWS_REGION".to_owned(), manifest.region.clone()),
        ("AWS_DEFAULT_REGION".to_owned(), manifest.region.clone()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
        ("AWS_ENDPOINT_URL".to_owned(), functions_endpoint),
    ];
    if args.trace {
        base_env.push(("ORDERSYNC_TRACE".to_owned(), "1".to_owned()));
    }
    if let Some(path) = &args.env_file {
        write_env_file(path, &base_env, &manifest, tools_websocket.as_deref())?;
    }
    let runtime = lambda::Runtime::new(manifest.functions, bin_dir, base_env);
    let missing = runtime.missing_binaries();
    if !missing.is_empty() {
        return Err(format!(
            "function binaries are missing (run `cargo build --workspace`): {}",
            missing
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let runtime_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot open the runtime API port: {e}"))?;
    let runtime_addr = runtime_listener.local_addr().map_err(|e| e.to_string())?;
    runtime.set_api_addr(runtime_addr.to_string());
    {
        let runtime = runtime.clone();
        tokio::spawn(accept_loop(runtime_listener, move |req, _peer| {
            runtime.clone().serve_runtime_api(req)
        }));
    }

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new(manifest_region.clone()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "local-runner",
        ))
        .load()
        .await;
    sources::start(&runtime, &sdk, &manifest_region, args.schedule_interval);
    queues::start(&runtime, &aws_sdk_sqs::Client::new(&sdk), &manifest_region);
    streams::start(&runtime, &endpoint, &manifest_region);
    tokio::spawn(websocket::WebSocketApi::new(runtime.clone(), stage, front).serve(ws_listener));

    let dist = args
        .template
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("web/dist");
    let web = web::WebApp::new(dist, &format!("ws://{ws_addr}"));
    let gateway = Arc::new(
        gateway::Gateway::new(runtime)
            .with_web(web)
            .with_cors(manifest_cors),
    );
    let api_addr = api_listener.local_addr().map_err(|e| e.to_string())?;
    for route in gateway.routes() {
        eprintln!("  {}", route.route_key());
    }
    {
        let gateway = gateway.clone();
        tokio::spawn(accept_loop(api_listener, move |req, peer| {
            gateway.clone().handle(req, peer)
        }));
    }
    if let Some(toss) = &toss_url {
        // Toss sends its webhooks to the API, as the merchant's dashboard would be set up to.
        let hook = format!("http://{api_addr}/v1/webhooks/toss");
        reqwest::Client::new()
            .post(format!("{toss}/__control"))
            .json(&serde_json::json!({"webhookUrl": hook}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("cannot set the Toss stand-in's webhook URL: {e}"))?;
    }
    match toss_url {
        Some(toss) => println!(
            "OrderSync local API on http://{api_addr} (WebSocket ws://{ws_addr}, AWS emulator {endpoint}, Toss stand-in {toss}) — order board: http://{api_addr}/app/"
        ),
        None => println!(
            "OrderSync local API on http://{api_addr} (WebSocket ws://{ws_addr}, AWS emulator {endpoint}) — order board: http://{api_addr}/app/"
        ),
    }

    shutdown_signal().await;
    eprintln!("local-runner: stopping");
    Ok(())
}

/// A listener on loopback, or why not: a port in use names the usual cause and the way around it.
async fn listen(port: u16) -> Result<TcpListener, String> {
    TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (is another `make dev` running? `PORT=8080 make dev` serves the API on 8080 and the \
             WebSocket API on 8081)"
        } else {
            ""
        };
        format!("cannot listen on 127.0.0.1:{port}: {e}{hint}")
    })
}

/// `https://<api id>.execute-api.<region>.amazonaws.com/<stage>` (the template's), as the
/// Management API under `front`: `<front>/<api id>/<stage>`.
fn management_endpoint(aws: &str, front: &str) -> String {
    let rest = aws.split_once("://").map_or(aws, |(_, rest)| rest);
    let (host, stage) = rest.split_once('/').unwrap_or((rest, ""));
    let api = host.split('.').next().unwrap_or(host);
    format!("{front}/{api}/{}", stage.trim_matches('/'))
}

/// Writes the environment a function needs to reach this stack, for `cargo lambda watch --env-file`
/// (see the README).
fn write_env_file(
    path: &std::path::Path,
    base_env: &[(String, String)],
    manifest: &stack::Manifest,
    websocket: Option<&str>,
) -> Result<(), String> {
    let mut vars: std::collections::BTreeMap<&str, &str> = base_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for function in &manifest.functions {
        // Each function's own front stays its own; the file points at the shared one.
        vars.extend(
            function
                .env
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "AWS_ENDPOINT_URL" | "WEBSOCKET_ENDPOINT"))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }
    if let Some(websocket) = websocket {
        vars.insert("WEBSOCKET_ENDPOINT", websocket);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

async fn accept_loop<S, F>(listener: TcpListener, serve: S)
where
    S: Fn(hyper::Request<hyper::body::Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<
            Output = Result<
                hyper::Response<http_body_util::Full<bytes::Bytes>>,
                std::convert::Infallible,
            >,
        > + Send
        + 'static,
{
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let serve = serve.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| serve(req, peer));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::management_endpoint;

    #[test]
    fn the_management_api_is_reached_under_the_front_as_on_aws() {
        assert_eq!(
            management_endpoint(
                "https://localwebsocketapi.execute-api.ap-northeast-2.amazonaws.com/dev",
                "http://127.0.0.1:4100"
            ),
            "http://127.0.0.1:4100/localwebsocketapi/dev"
        );
    }
}
