//! The local AWS stack: moto's server on a loopback port, provisioned from template.yaml by
//! `infra/local/provision.py`, which also returns the manifest of functions the runner serves.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use serde::Deserialize;
use tokio::process::{Child, Command};

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub region: String,
    pub functions: Vec<FunctionSpec>,
    /// The HTTP API's `CorsConfiguration`, if the template gives one.
    #[serde(default)]
    pub cors: Option<crate::cors::Cors>,
    /// Each table's class (`STANDARD`, `STANDARD_INFREQUENT_ACCESS`): what its requests and
    /// storage are priced at (the emulator stores every class alike).
    #[serde(default, rename = "tableClasses")]
    pub table_classes: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FunctionSpec {
    /// The template's logical id, e.g. `AuthSignupFunction`.
    pub name: String,
    /// The cargo binary, e.g. `auth-signup`.
    pub binary: String,
    pub memory: u32,
    /// Seconds.
    pub timeout: u64,
    pub env: BTreeMap<String, String>,
    pub routes: Vec<RouteSpec>,
    /// Route keys of the WebSocket API this function serves (`$connect`, `$disconnect`).
    #[serde(default)]
    pub websocket: Vec<String>,
    /// Non-HTTP event sources (S3, SQS, DynamoDB streams, schedules), as the template gives them.
    #[serde(default)]
    pub sources: Vec<serde_json::Value>,
    /// Its policy's `Allow` statements, enforced by the front.
    #[serde(default)]
    pub grants: Vec<crate::iam::Grant>,
    /// `Active` or `PassThrough` (X-Ray), and its `LoggingConfig`: what Lambda adds to its
    /// invocations, for the cost meter.
    #[serde(default)]
    pub tracing: Option<String>,
    #[serde(default)]
    pub logging: crate::meter::Logging,
}

impl FunctionSpec {
    pub fn traced(&self) -> bool {
        self.tracing.as_deref() == Some("Active")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
}

/// Starts moto's server (through `infra/local/moto_server.py`, which isolates DynamoDB transactions)
/// from the project's virtualenv, on a loopback port it binds itself and reports (one picked here and
/// handed over could be taken by another process first).
pub async fn start_emulator(root: &Path) -> Result<(Child, String), String> {
    use tokio::io::AsyncBufReadExt;
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        return Err(format!(
            "{} is missing: run `make bootstrap` (or infra/bootstrap) first",
            python.display()
        ));
    }
    let mut child = Command::new(&python)
        .arg(root.join("infra/local/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start moto's server: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout from moto's server")?;
    let mut lines = tokio::io::BufReader::new(stdout);
    let mut line = String::new();
    lines
        .read_line(&mut line)
        .await
        .map_err(|e| format!("moto's server did not start: {e}"))?;
    // Whatever else it prints is read and dropped, so that it never writes into a closed pipe.
    tokio::spawn(async move {
        let mut rest = lines.lines();
        while let Ok(Some(_)) = rest.next_line().await {}
    });
    let port: u16 = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("moto's server did not say its port: {line:?}"))?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

/// Creates the template's resources on the emulator and returns the function manifest.
pub async fn provision(
    root: &Path,
    template: &Path,
    endpoint: &str,
    params: &[String],
) -> Result<Manifest, String> {
    let output = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("infra/local/provision.py"))
        .arg("--template")
        .arg(template)
        .args(["--endpoint", endpoint])
        .args(params.iter().flat_map(|p| ["--param", p.as_str()]))
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run provision.py: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "provisioning failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("bad manifest: {e}"))
}

/// Starts the Toss stand-in (`infra/toss-standin`) on a free port; its base URL.
pub async fn start_toss_standin(bin_dir: &Path) -> Result<(Child, String), String> {
    use tokio::io::AsyncBufReadExt;
    let binary = bin_dir.join("toss-standin");
    let mut child = Command::new(&binary)
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {} (run `cargo build --workspace`): {e}",
                binary.display()
            )
        })?;
    let stdout = child
        .stdout
        .take()
        .ok_or("no stdout from the Toss stand-in")?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .map_err(|e| format!("the Toss stand-in did not start: {e}"))?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| format!("unexpected Toss stand-in output: {line}"))?
        .to_owned();
    Ok((child, url))
}
