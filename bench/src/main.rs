//! `ignis-bench`: measures, in one run on one machine, for a no-op Python
//! and a no-op Node.js function:
//!
//! - **cold**: a call that boots a new sandbox (each call follows an update,
//!   which drains the warm pool);
//! - **warm**: a call served by an idle sandbox;
//! - **floor**: a round trip to the same bootstrap in the same hardened
//!   container over its Unix socket, with no HTTP and no ignis in between;
//! - **naive**: one `docker run` per request, the design ignis replaces.
//!
//! Latencies are measured by the client. Results go to `OUT/latest.json`
//! and `OUT/latest.md`; ratios matter more than absolute numbers on a
//! shared machine.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine as _;
use clap::Parser;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    /// The ignis binary to benchmark.
    #[arg(long, default_value = "target/release/ignis")]
    ignis: PathBuf,
    /// Where to write the report.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Fewer iterations (a smoke run).
    #[arg(long)]
    quick: bool,
}

struct Plan {
    cold: usize,
    warm: usize,
    floor: usize,
    naive: usize,
}

#[derive(Debug, Clone, Serialize)]
struct Stats {
    n: usize,
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

fn stats(mut samples: Vec<f64>) -> Stats {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let pct = |p: f64| samples[((n as f64 * p).ceil() as usize).clamp(1, n) - 1];
    Stats {
        n,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        mean_ms: samples.iter().sum::<f64>() / n as f64,
        min_ms: samples[0],
        max_ms: samples[n - 1],
    }
}

struct Runtime {
    name: &'static str,
    function: &'static str,
    runtime: &'static str,
    handler: &'static str,
    file: &'static str,
    source: &'static str,
    argv: &'static [&'static str],
    naive: &'static [&'static str],
}

const RUNTIMES: [Runtime; 2] = [
    Runtime {
        name: "python",
        function: "noop-py",
        runtime: "python3",
        handler: "main.handler",
        file: "main.py",
        source: "def handler(event, context):\n    return {}\n",
        argv: &["/usr/bin/python3", "-S", "-B", "/opt/ignis/bootstrap.py", "--socket", "/run/ignis/channel.sock"],
        naive: &[
            "/usr/bin/python3",
            "-c",
            "import json,sys\ndef handler(event, context):\n    return {}\nprint(json.dumps(handler(json.loads(sys.argv[1]), None)))",
            "{}",
        ],
    },
    Runtime {
        name: "node",
        function: "noop-js",
        runtime: "nodejs",
        handler: "index.handler",
        file: "index.js",
        source: "exports.handler = async () => ({});\n",
        argv: &["/usr/bin/node", "/opt/ignis/bootstrap.js", "--socket", "/run/ignis/channel.sock"],
        naive: &[
            "/usr/bin/node",
            "-e",
            "const handler = async () => ({}); handler(JSON.parse(process.argv[1])).then(v => console.log(JSON.stringify(v)));",
            "{}",
        ],
    },
];

/// The hardened flags every ignis container gets (see ignis-docker).
const HARDENING: &[&str] = &[
    "--network",
    "none",
    "--read-only",
    "--tmpfs",
    "/tmp:rw,nosuid,nodev,size=64m,mode=1777",
    "--tmpfs",
    "/var/task:rw,nosuid,nodev,size=256m,mode=1777",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--user",
    "65534:65534",
    "--memory",
    "128m",
    "--memory-swap",
    "128m",
    "--cpus",
    "0.5",
    "--pids-limit",
    "128",
];

struct Server {
    child: Child,
    url: String,
    _dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start_server(ignis: &Path) -> anyhow::Result<Server> {
    let dir = std::env::temp_dir().join(format!("ignis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut child = Command::new(ignis)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", ignis.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let Some(line) = lines.next() else {
            bail!("ignis exited before listening")
        };
        if let Some(url) = line?.strip_prefix("ignis: listening on ") {
            break url.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(Server {
        child,
        url,
        _dir: dir,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn bench_api(
    http: &reqwest::Client,
    url: &str,
    rt: &Runtime,
    plan: &Plan,
) -> anyhow::Result<(Stats, Stats)> {
    let create = json!({"name": rt.function, "runtime": rt.runtime, "handler": rt.handler,
        "code": {"files": {rt.file: rt.source}}});
    let r = http
        .post(format!("{url}/api/v1/functions"))
        .json(&create)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("deploy failed: {}", r.text().await?);
    }
    let invoke = format!("{url}/api/v1/functions/{}/invoke", rt.function);
    let call = |expect: &'static str| {
        let invoke = invoke.clone();
        async move {
            let t = Instant::now();
            let r = http.post(&invoke).body("{}").send().await?;
            let start = r
                .headers()
                .get("x-ignis-start")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let status = r.status();
            let _ = r.bytes().await?;
            let elapsed = ms(t.elapsed());
            if !status.is_success() || start != expect {
                bail!("expected a {expect} call with 200, got {status} ({start})");
            }
            anyhow::Ok(elapsed)
        }
    };
    let mut cold = Vec::new();
    for i in 0..plan.cold {
        // A new version drains the pool: the next call boots a sandbox.
        let r = http
            .put(format!("{url}/api/v1/functions/{}", rt.function))
            .json(&json!({"env": {"ITERATION": i.to_string()}}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("update failed: {}", r.text().await?);
        }
        cold.push(call("cold").await?);
    }
    for _ in 0..50 {
        call("warm").await?;
    }
    let mut warm = Vec::with_capacity(plan.warm);
    for _ in 0..plan.warm {
        warm.push(call("warm").await?);
    }
    Ok((stats(cold), stats(warm)))
}

/// Round trips to the bootstrap in a hardened container, straight over its
/// socket.
fn bench_floor(image: &str, rt: &Runtime, n: usize) -> anyhow::Result<Stats> {
    use std::os::unix::net::UnixStream;
    let dir = PathBuf::from(format!("/tmp/ignis-bench-floor-{}", rt.name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    let name = format!("ignis-bench-floor-{}", rt.name);
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    let mut cmd = Command::new("docker");
    cmd.args(["run", "-d", "--name", &name]).args(HARDENING);
    cmd.arg("-v")
        .arg(format!("{}:/run/ignis", dir.display()))
        .arg(image)
        .args(rt.argv);
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("docker run: {}", String::from_utf8_lossy(&out.stderr));
    }
    let result = (|| {
        let sock = dir.join("channel.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sock.exists() {
            if Instant::now() > deadline {
                bail!("bootstrap did not start");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let stream = UnixStream::connect(&sock)?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        let files = BTreeMap::from([(rt.file.to_string(), rt.source.to_string())]);
        let zip = ignis_package::from_files(&files, 1 << 20)?;
        let init = json!({"type": "init", "function": rt.function, "version": 1, "handler": rt.handler,
            "env": {}, "code_zip_b64": base64::engine::general_purpose::STANDARD.encode(&zip.bytes),
            "memory_mb": 128, "timeout_ms": 3000, "sandbox_id": "bench", "now_ms": 0});
        writeln!(writer, "{init}")?;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if !line.contains("\"ready\"") {
            bail!("init failed: {line}");
        }
        let mut samples = Vec::with_capacity(n);
        for i in 0..n + 50 {
            let msg = format!(
                "{{\"type\":\"invoke\",\"items\":[{{\"id\":\"b{i}\",\"event\":{{}},\"deadline_ms\":0,\"timeout_ms\":3000}}],\"concurrent\":false}}\n"
            );
            let t = Instant::now();
            writer.write_all(msg.as_bytes())?;
            line.clear();
            reader.read_line(&mut line)?;
            if i >= 50 {
                samples.push(ms(t.elapsed()));
            }
        }
        Ok(stats(samples))
    })();
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// One `docker run --rm` per request, with the same hardening.
fn bench_naive(image: &str, rt: &Runtime, n: usize) -> anyhow::Result<Stats> {
    let mut samples = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let out = Command::new("docker")
            .args(["run", "--rm"])
            .args(HARDENING)
            .arg(image)
            .args(rt.naive)
            .output()?;
        let elapsed = ms(t.elapsed());
        if !out.status.success() || !String::from_utf8_lossy(&out.stdout).contains("{}") {
            bail!("naive run failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        samples.push(elapsed);
    }
    Ok(stats(samples))
}

#[derive(Serialize)]
struct RuntimeReport {
    runtime: &'static str,
    cold: Stats,
    warm: Stats,
    floor: Stats,
    naive_docker_run: Stats,
    /// Warm p50 minus floor p50: what HTTP and the engine add.
    warm_overhead_p50_ms: f64,
    cold_over_warm_p50: f64,
    naive_over_cold_p50: f64,
}

#[derive(Serialize)]
struct Report {
    generated_at: String,
    machine: String,
    image: String,
    runtimes: Vec<RuntimeReport>,
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0);
    format!("{cpus} CPUs, {} GiB", mem / 1024 / 1024)
}

fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# ignis benchmark\n\n{} on {}, image `{}`. Latency measured by the client, in ms.\n\n",
        r.generated_at, r.machine, r.image
    );
    s.push_str("| runtime | path | n | p50 | p99 | mean |\n|---|---|---:|---:|---:|---:|\n");
    for rt in &r.runtimes {
        for (label, st) in [
            ("cold (boot a sandbox)", &rt.cold),
            ("warm (idle sandbox)", &rt.warm),
            ("floor (socket round trip, no ignis)", &rt.floor),
            ("naive (`docker run` per request)", &rt.naive_docker_run),
        ] {
            s.push_str(&format!(
                "| {} | {label} | {} | {:.3} | {:.3} | {:.3} |\n",
                rt.runtime, st.n, st.p50_ms, st.p99_ms, st.mean_ms
            ));
        }
    }
    s.push_str("\n| runtime | warm p50 − floor p50 | cold / warm (p50) | naive / cold (p50) |\n|---|---:|---:|---:|\n");
    for rt in &r.runtimes {
        s.push_str(&format!(
            "| {} | {:.3} ms | {:.0}x | {:.1}x |\n",
            rt.runtime, rt.warm_overhead_p50_ms, rt.cold_over_warm_p50, rt.naive_over_cold_p50
        ));
    }
    s
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = if args.quick {
        Plan {
            cold: 5,
            warm: 200,
            floor: 200,
            naive: 3,
        }
    } else {
        Plan {
            cold: 30,
            warm: 3000,
            floor: 3000,
            naive: 15,
        }
    };
    let image = ignis_docker::image::image_tag();
    let server = start_server(&args.ignis)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let mut runtimes = Vec::new();
    for rt in &RUNTIMES {
        eprintln!("== {}: cold and warm calls through ignis", rt.name);
        let (cold, warm) = bench_api(&http, &server.url, rt, &plan).await?;
        eprintln!("== {}: floor", rt.name);
        let floor = bench_floor(&image, rt, plan.floor)?;
        eprintln!("== {}: naive docker run", rt.name);
        let naive = bench_naive(&image, rt, plan.naive)?;
        runtimes.push(RuntimeReport {
            runtime: rt.name,
            warm_overhead_p50_ms: warm.p50_ms - floor.p50_ms,
            cold_over_warm_p50: cold.p50_ms / warm.p50_ms,
            naive_over_cold_p50: naive.p50_ms / cold.p50_ms,
            cold,
            warm,
            floor,
            naive_docker_run: naive,
        });
    }
    drop(server);
    let report = Report {
        generated_at: chrono_now(),
        machine: machine(),
        image,
        runtimes,
    };
    let md = markdown(&report);
    println!("{md}");
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("latest.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(args.out.join("latest.md"), md)?;
    eprintln!("wrote {}/latest.{{json,md}}", args.out.display());
    Ok(())
}

fn chrono_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
