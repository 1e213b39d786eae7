//! Allocations per request, and system calls. A count, not a time: it does not move with this VM's
//! day, so two builds compare exactly where their CPU per request does not.
//!
//! - Our processes (the functions, `sdk-floor`) allocate with `shared::heap`'s counted mimalloc;
//!   with `shared::heap::REPORT_VAR` set, each request's line reports what its process allocated
//!   and freed since the line before ([`reported`]).
//! - Every call into glibc's `malloc`, `calloc`, `realloc` (`free` apart) is counted by the kernel
//!   with uprobes (`perf probe` on the C library, `perf stat -p` on the process): all of
//!   hello-world's allocations, and those our processes' C code (aws-lc) makes beside mimalloc's.
//!   Each probe hit traps into the kernel, so counts are taken over requests of their own, never
//!   while CPU is timed.
//! - System calls, of every process, by their tracepoint.
//!
//! Needs root (or `perf_event_paranoid` ≤ 1 and tracefs access) and `perf`; without them the bench
//! says why and goes on without counts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// What `perf stat` counts: the allocator's entry points (probes on the C library, which
/// [`probes`] adds), and every system call (a tracepoint).
const EVENTS: [&str; 5] = [
    "probe_libc:malloc",
    "probe_libc:calloc",
    "probe_libc:realloc",
    "probe_libc:free",
    SYSCALLS,
];

const SYSCALLS: &str = "raw_syscalls:sys_enter";

/// The allocator's entry points, as `perf probe` names them.
fn probed_calls() -> impl Iterator<Item = &'static str> {
    EVENTS
        .iter()
        .filter_map(|event| event.strip_prefix("probe_libc:"))
}

/// Counts from one window of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// `malloc` + `calloc` + `realloc`: each takes a block (or moves one).
    pub allocations: u64,
    pub frees: u64,
    /// System calls of every kind.
    pub syscalls: u64,
}

impl Counts {
    /// Per request, over `n` requests.
    pub fn per_request(self, n: usize) -> PerRequest {
        let n = n.max(1) as f64;
        PerRequest {
            allocations: self.allocations as f64 / n,
            frees: self.frees as f64 / n,
            syscalls: self.syscalls as f64 / n,
        }
    }

    /// These counts (perf's) with what `lines` lines reported for `requests` requests: the
    /// process's Rust allocations, which go to mimalloc, beside what its C code (aws-lc) still
    /// asks glibc's `malloc` for, which the probes count. No line reporting (hello-world) leaves
    /// perf's counts as they are.
    pub fn with_reported(
        self,
        reported: Counts,
        lines: usize,
        requests: usize,
    ) -> Result<Counts, String> {
        match lines {
            0 => Ok(self),
            lines if lines == requests => Ok(Counts {
                allocations: self.allocations + reported.allocations,
                frees: self.frees + reported.frees,
                syscalls: self.syscalls,
            }),
            lines => Err(format!(
                "{lines} lines reported allocations for {requests} requests"
            )),
        }
    }
}

/// The allocations and frees `lines` report (each a process's line, bare or with the runner's
/// `[label] ` before it, whose `heap` says what its process counted since its line before),
/// summed; and how many lines reported them.
pub fn reported<'a>(lines: impl IntoIterator<Item = &'a str>) -> (Counts, usize) {
    let mut counts = Counts::default();
    let mut reporting = 0;
    for line in lines {
        let Some(json) = line.find('{').map(|start| &line[start..]) else {
            continue;
        };
        let Ok(line) = serde_json::from_str::<serde_json::Value>(json) else {
            continue;
        };
        let heap = &line["heap"];
        if let (Some(allocations), Some(frees)) =
            (heap["allocations"].as_u64(), heap["frees"].as_u64())
        {
            counts.allocations += allocations;
            counts.frees += frees;
            reporting += 1;
        }
    }
    (counts, reporting)
}

/// [`Counts`] per request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerRequest {
    pub allocations: f64,
    pub frees: f64,
    pub syscalls: f64,
}

impl PerRequest {
    pub fn json(self) -> serde_json::Value {
        serde_json::json!({"allocations": self.allocations, "frees": self.frees,
            "syscalls": self.syscalls})
    }
}

/// The C library the functions load (the bench's own: the same machine, the same loader).
fn libc_path() -> Result<PathBuf, String> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("libc.so"))
        })
        .map(PathBuf::from)
        .ok_or_else(|| "no libc.so in this process's maps".to_owned())
}

/// Makes sure the four probes exist (adding the missing ones once): why not, if they cannot.
pub async fn probes() -> Result<(), String> {
    let libc = libc_path()?;
    let listed = Command::new("perf")
        .args(["probe", "--list"])
        .stderr(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("perf: {e}"))?;
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    for call in probed_calls() {
        if listed.contains(&format!("probe_libc:{call} ")) {
            continue;
        }
        let added = Command::new("perf")
            .arg("probe")
            .arg("-x")
            .arg(&libc)
            .args(["--add", call])
            .output()
            .await
            .map_err(|e| format!("perf probe: {e}"))?;
        if !added.status.success() {
            return Err(format!(
                "perf probe -x {} --add {call}: {}",
                libc.display(),
                String::from_utf8_lossy(&added.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// A `perf` command attached to processes with its events off, under its control FIFOs.
struct Session {
    perf: Child,
    control: tokio::fs::File,
    ack: BufReader<tokio::fs::File>,
    dir: TempDir,
}

/// A directory removed when dropped (the control FIFOs and perf's output).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Session {
    /// `perf <command> <args…> -e <events> -p <pids>`, events off until [`Session::on`];
    /// `args` may name files in [`Session::dir`] through `{dir}`.
    async fn attach(
        command: &str,
        args: &[&str],
        events: &[&str],
        pids: &[u32],
    ) -> Result<Session, String> {
        if pids.is_empty() {
            return Err("no process to count".to_owned());
        }
        let dir = std::env::temp_dir().join(format!("ordersync-allocs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let dir = TempDir(dir);
        let (control, ack) = (dir.0.join("control"), dir.0.join("ack"));
        for fifo in [&control, &ack] {
            let made = Command::new("mkfifo")
                .arg(fifo)
                .status()
                .await
                .map_err(|e| e.to_string())?;
            if !made.success() {
                return Err(format!("mkfifo {}", fifo.display()));
            }
        }
        let events = events.join(",");
        let pids = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let within = dir.0.display().to_string();
        let perf = Command::new("perf")
            .arg(command)
            .args(args.iter().map(|arg| arg.replace("{dir}", &within)))
            .args(["--delay=-1", "-e", &events, "-p", &pids])
            .arg(format!(
                "--control=fifo:{},{}",
                control.display(),
                ack.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("perf {command}: {e}"))?;
        // Opening a FIFO waits for its other end: perf's, once it is attached.
        let opened = async {
            let control = tokio::fs::OpenOptions::new()
                .write(true)
                .open(&control)
                .await?;
            let ack = tokio::fs::File::open(&ack).await?;
            Ok::<_, std::io::Error>((control, ack))
        };
        let (control, ack) = tokio::time::timeout(Duration::from_secs(10), opened)
            .await
            .map_err(|_| format!("perf {command} did not attach"))?
            .map_err(|e| e.to_string())?;
        Ok(Session {
            perf,
            control,
            ack: BufReader::new(ack),
            dir,
        })
    }

    async fn command(&mut self, command: &str) -> Result<(), String> {
        self.control
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.ack.read_line(&mut line))
            .await
            .map_err(|_| format!("perf did not acknowledge {command}"))?
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Events on.
    async fn on(&mut self) -> Result<(), String> {
        self.command("enable").await
    }

    /// Events off, and perf stopped (it writes its output when interrupted).
    async fn finish(&mut self) -> Result<(), String> {
        self.command("disable").await?;
        if let Some(pid) = self.perf.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        tokio::time::timeout(Duration::from_secs(60), self.perf.wait())
            .await
            .map_err(|_| "perf did not stop".to_owned())?
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// A CPU profile of processes (`perf record -e cpu-clock` with DWARF call stacks) into `path`,
/// from [`Profile::started`] until [`Profile::stop`]. Sampling costs the process a little CPU: a
/// profiled run's CPU per request is not a measurement.
pub struct Profile(Session);

impl Profile {
    /// Attached to `pids` and sampling.
    pub async fn started(pids: &[u32], path: &Path) -> Result<Profile, String> {
        let path = path.display().to_string();
        let args = ["-F", "2999", "--call-graph", "dwarf,16384", "-o", &path];
        let mut session = Session::attach("record", &args, &["cpu-clock"], pids).await?;
        session.on().await?;
        Ok(Profile(session))
    }

    pub async fn stop(mut self) -> Result<(), String> {
        self.0.finish().await
    }
}

/// A `perf stat` attached to processes, counting from [`Counter::started`] until [`Counter::stop`];
/// with `stacks`, a `perf record` beside it keeps the call stack of each allocation in that file.
pub struct Counter {
    stat: Session,
    record: Option<Session>,
}

impl Counter {
    /// Attached to `pids` and counting.
    pub async fn started(pids: &[u32], stacks: Option<&Path>) -> Result<Counter, String> {
        let stat = Session::attach("stat", &["-x,", "-o", "{dir}/counts"], &EVENTS, pids).await?;
        let record = match stacks {
            None => None,
            Some(path) => {
                let path = path.display().to_string();
                // Every allocation (a probe's period is always 1), 8 KB of stack each: ~20 MB a
                // thousand allocations, so hundreds of MB for twenty order creates.
                let args = ["--call-graph", "dwarf,8192", "-o", &path];
                let allocations = &EVENTS[..3];
                Some(Session::attach("record", &args, allocations, pids).await?)
            }
        };
        let mut counter = Counter { stat, record };
        if let Some(record) = &mut counter.record {
            record.on().await?;
        }
        counter.stat.on().await?;
        Ok(counter)
    }

    /// Counting off, once what the last request frees after its answer is sent (its own too) has
    /// been freed; what was counted.
    pub async fn stop(mut self) -> Result<Counts, String> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.stat.finish().await?;
        if let Some(record) = &mut self.record {
            record.finish().await?;
        }
        let text =
            std::fs::read_to_string(self.stat.dir.0.join("counts")).map_err(|e| e.to_string())?;
        parse(&text)
    }
}

/// A counter's counts, if one was started (or why it could not be).
pub async fn stopped(counter: Option<Result<Counter, String>>) -> Option<Result<Counts, String>> {
    match counter? {
        Ok(counter) => Some(counter.stop().await),
        Err(err) => Some(Err(err)),
    }
}

/// `perf stat -x,` output: `<count>,<unit>,<event>,…` per event.
fn parse(text: &str) -> Result<Counts, String> {
    let mut counts = Counts::default();
    let mut seen = 0;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(count), Some(event)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        if !EVENTS.contains(event) {
            continue;
        }
        // Not counted: the process did not run while counting was on (so it called nothing).
        let count: u64 = match *count {
            "<not counted>" => 0,
            count => count
                .parse()
                .map_err(|_| format!("perf stat counted {event} as {count:?}"))?,
        };
        seen += 1;
        match *event {
            "probe_libc:free" => counts.frees += count,
            SYSCALLS => counts.syscalls += count,
            _ => counts.allocations += count,
        }
    }
    if seen < EVENTS.len() {
        return Err(format!("perf stat's output lacks counts: {text:?}"));
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_stat_counts_are_summed_by_kind() {
        let text = "# started on Sat Dec  5\n\n\
            1200,,probe_libc:malloc,812345,100.00,,\n\
            3,,probe_libc:calloc,812345,100.00,,\n\
            40,,probe_libc:realloc,812345,100.00,,\n\
            1190,,probe_libc:free,812345,100.00,,\n\
            410,,raw_syscalls:sys_enter,812345,100.00,,\n";
        assert_eq!(
            parse(text),
            Ok(Counts {
                allocations: 1243,
                frees: 1190,
                syscalls: 410,
            })
        );
        let per = Counts {
            allocations: 1243,
            frees: 1190,
            syscalls: 410,
        }
        .per_request(10);
        assert_eq!(
            per.json(),
            serde_json::json!({"allocations": 124.3, "frees": 119.0, "syscalls": 41.0})
        );
    }

    #[test]
    fn reported_counts_add_to_the_probes_where_every_request_reported() {
        let lines = [
            r#"[OrdersStatusFunction#1] {"level":"INFO","heap":{"allocations":1100,"frees":1098}}"#,
            r#"[OrdersStatusFunction#1] {"_aws":{},"PaymentFailures":1}"#,
            r#"{"heap":{"allocations":1102,"frees":1104}}"#,
            "not a line of ours",
        ];
        let (reported, lines) = reported(lines);
        assert_eq!(lines, 2);
        let probed = Counts {
            allocations: 3,
            frees: 1,
            syscalls: 42,
        };
        let both = Counts {
            allocations: 2205,
            frees: 2203,
            syscalls: 42,
        };
        assert_eq!(probed.with_reported(reported, lines, 2), Ok(both));
        assert_eq!(probed.with_reported(Counts::default(), 0, 2), Ok(probed));
        assert!(probed.with_reported(reported, lines, 3).is_err());
    }

    #[test]
    fn a_probe_perf_could_not_count_is_an_error_not_a_zero() {
        let text = "<not supported>,,probe_libc:malloc,0,0.00,,\n\
            0,,probe_libc:calloc,0,0.00,,\n\
            0,,probe_libc:realloc,0,0.00,,\n\
            0,,probe_libc:free,0,0.00,,\n\
            0,,raw_syscalls:sys_enter,0,0.00,,\n";
        assert!(parse(text).is_err());
        assert!(parse("").is_err());
    }
}
