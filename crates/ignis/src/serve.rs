//! `ignis serve` and `ignis images build`: wiring the parts together.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ignis_api::{router, ApiConfig, AppState, Registry};
use ignis_docker::{DockerBackend, DockerConfig};
use ignis_engine::{Engine, EngineConfig, Recorder};
use ignis_sandbox::Backend;
use ignis_store::{SqliteStore, Store};

use crate::config::{AuthMode, ServeConfig, Settings};

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // refinery logs every migration's whole SQL at info: the store
        // logs one line per applied migration instead.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,tower_http=warn,refinery_core=warn")
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub async fn run(config: ServeConfig) -> anyhow::Result<ExitCode> {
    init_logging();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let console = match config.console_dir.clone() {
        Some(dir) => ignis_api::console::Source::Dir(dir),
        None => ignis_api::console::Source::Embedded,
    };
    let auth_on = config.auth == AuthMode::On;
    tracing::debug!(?config, "starting");
    let store = SqliteStore::open(&config.data_dir)
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    tracing::debug!(path = %store.path().display(), "store open");
    let store: Arc<dyn Store> = Arc::new(store);

    let mut backends: Vec<Arc<dyn Backend>> = Vec::new();
    if config.docker {
        match connect_docker(&config).await {
            Ok(docker) => backends.push(Arc::new(docker)),
            Err(e) => {
                // Keep serving the management API; invocations on Docker
                // answer 503 until the engine is fixed and ignis restarted.
                tracing::error!("Docker backend unavailable: {e:#}");
                eprintln!("ignis: Docker backend unavailable: {e:#}");
            }
        }
    }

    let metrics = Arc::new(ignis_metrics::Metrics::new());
    if config.stage_timings {
        metrics.stages.enable();
    }
    if config.microvm {
        match connect_microvm(&config).await {
            Ok(vm) => backends.push(Arc::new(vm)),
            Err(e) => {
                tracing::warn!("microVM backend unavailable: {e:#}");
                eprintln!("ignis: microVM backend unavailable: {e:#}");
            }
        }
    }

    let (recorder, recorder_task) = Recorder::start(store.clone(), metrics, config.record_capacity);
    let engine = Engine::with_retention(
        EngineConfig {
            memory_budget_mb: config.memory_budget_mb,
            queue_capacity: config.queue_capacity,
            stem_initial: config.stem_initial,
            stem_max: config.stem_max,
            record: config.record,
            ..EngineConfig::default()
        },
        backends,
        store.clone(),
        recorder,
        ignis_engine::observe::Retention {
            rollup_days: config.rollup_days,
            invocation_hours: config.invocation_hours,
            max_invocations: config.max_invocations,
        },
    );
    let orphans = engine.remove_orphans().await;
    if orphans > 0 {
        tracing::info!(orphans, "removed sandboxes left by a previous run");
    }
    let registry = Registry::load(store.clone()).await?;
    // min_warm sandboxes and stem cells for what is deployed.
    engine.prepare(&registry.list());
    let auth = ignis_auth::Auth::load(
        store.clone(),
        Arc::new(ignis_auth::SystemClock),
        ignis_auth::AuthConfig {
            enabled: auth_on,
            fail_burst: config.auth_fail_burst,
            fail_per_minute: config.auth_fail_per_minute,
            ..ignis_auth::AuthConfig::default()
        },
    )
    .await
    .context("loading API keys")?;
    let first_key = if auth_on {
        let admin_key = config.admin_key.as_ref().map(|k| k.expose());
        auth.bootstrap(&config.data_dir, admin_key)
            .await
            .context("setting up the first admin key")?
    } else {
        None
    };
    auth.spawn_flusher(Duration::from_secs(10));
    // SigV4 secrets of the Lambda API derive from this (DATA_DIR/aws-signing.key, 0600).
    let signing = ignis_auth::aws::SigningSecret::load_or_create(&config.data_dir)
        .context("loading the AWS signing secret")?;
    auth.set_signing_secret(signing);
    let state = Arc::new(AppState::new(
        registry,
        engine.clone(),
        auth.clone(),
        ApiConfig {
            max_code_bytes: config.max_code_mb * 1024 * 1024,
            metrics_public: config.metrics_public,
            console: console.clone(),
            async_queue: ignis_api::asyncq::AsyncConfig {
                workers: config.async_workers,
                per_function: config.async_queue_per_function,
                total: config.async_queue_total,
                retry_base_ms: config.async_retry_base_ms,
            },
            aws_region: config.aws_region.clone(),
            aws_account: config.aws_account.clone(),
            ..ApiConfig::default()
        },
        config.instance.clone(),
    ));
    ignis_api::asyncq::start(&state)
        .await
        .context("starting the asynchronous queue")?;
    // Code that calls still held when its function was deleted or updated
    // is collected once they are done.
    // A weak reference: the task must not keep the engine (and with it the
    // record writer, awaited at shutdown) alive.
    tokio::spawn({
        let state = Arc::downgrade(&state);
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(state) = state.upgrade() else { return };
                if let Err(e) = state.registry.collect_garbage().await {
                    tracing::warn!(error = %e, "could not collect unreferenced code");
                }
            }
        }
    });
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    for status in engine.backend_status().await {
        let mark = if status.available {
            "ready"
        } else {
            "UNAVAILABLE"
        };
        println!("ignis: backend {}: {mark} ({})", status.kind, status.detail);
    }
    print_access(&config, addr, first_key.as_ref());
    if console.built() {
        println!("ignis: console: http://{addr}/ (log in with an API key)");
    } else {
        println!("ignis: console not built into this binary (cd web && npm ci && npm run build; then rebuild)");
    }
    // Tests and scripts read this line to learn the port.
    println!("ignis: listening on http://{addr}");
    tracing::debug!(%addr, "listening");

    let grace = Duration::from_secs(config.shutdown_grace_s);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal(engine.clone(), grace))
    .await?;
    auth.flush().await;
    // Let the record writer drain what the last calls produced.
    drop(engine);
    let _ = tokio::time::timeout(Duration::from_secs(5), recorder_task).await;
    println!("ignis: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Tells the operator how to get in: the first admin key (once), where it
/// is kept, or that authentication is off.
fn print_access(
    config: &ServeConfig,
    addr: std::net::SocketAddr,
    first: Option<&ignis_auth::Secret>,
) {
    let key_file = config.data_dir.join("admin.key");
    if config.auth == AuthMode::Off {
        let warning = "AUTHENTICATION IS OFF: every request acts as an admin (loopback only)";
        tracing::warn!("{warning}");
        println!("ignis: !!! {warning} !!!");
        return;
    }
    if let Some(secret) = first {
        println!("ignis: created the first admin key; it is shown this once:");
        println!();
        println!("    {}", secret.expose());
        println!();
        println!(
            "ignis: it is also in {} (mode 0600). Use it with `ignis login --server http://{addr}`,",
            key_file.display()
        );
        println!(
            "ignis: `export IGNIS_API_KEY=$(cat {})`, or `curl -H \"Authorization: Bearer $IGNIS_API_KEY\"`.",
            key_file.display()
        );
    } else if key_file.exists() {
        println!(
            "ignis: admin key: {} (lost it? `ignis admin reset-key --data-dir {}`)",
            key_file.display(),
            config.data_dir.display()
        );
    }
}

/// Waits for SIGTERM or Ctrl-C, then drains the engine: new calls are
/// refused, calls in flight finish (up to `grace`), sandboxes are removed.
/// The HTTP server stops accepting connections once this returns.
async fn shutdown_signal(engine: Engine, grace: Duration) {
    let ctrl_c = tokio::signal::ctrl_c();
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!(grace_s = grace.as_secs(), "shutting down");
    engine.shutdown(grace).await;
    // Charts survive the restart: write the minutes still in memory.
    engine.flush_metrics().await;
}

async fn connect_microvm(config: &ServeConfig) -> anyhow::Result<ignis_microvm::MicroVmBackend> {
    let cache = config.image_dir.clone();
    let artifacts = ignis_microvm::image::ensure_microvm_image(&cache, &|line| {
        tracing::info!("{line}");
    })
    .await?;
    let snapshot_dir = artifacts
        .kernel
        .parent()
        .map(|d| d.join("snapshots"))
        .unwrap_or_else(|| cache.join("snapshots"));
    let backend = ignis_microvm::MicroVmBackend::start(ignis_microvm::MicroVmConfig {
        qemu: config.qemu.clone(),
        snapshots: config.microvm_snapshots.mode(),
        snapshot_dir,
        artifacts,
        run_dir: config.run_dir.join("vm"),
        instance: config.instance.clone(),
        force_tcg: config.microvm_accel == crate::config::MicrovmAccel::Tcg,
    })
    .await?;
    Ok(backend)
}

async fn connect_docker(config: &ServeConfig) -> anyhow::Result<DockerBackend> {
    let mut docker_config = DockerConfig::new(
        ignis_docker::image::image_tag(),
        config.run_dir.clone(),
        config.instance.clone(),
    );
    docker_config.socket = config.docker_socket.clone();
    let backend = DockerBackend::connect(docker_config).await?;
    let cache = config.image_dir.clone();
    ignis_docker::image::ensure_docker_image(backend.docker(), &cache, false, &|line| {
        tracing::info!("{line}");
    })
    .await?;
    Ok(backend)
}

pub async fn build_images(settings: &Settings, force: bool) -> anyhow::Result<ExitCode> {
    let image_dir = settings.image_dir.clone();
    let mut docker_config = DockerConfig::new(
        ignis_docker::image::image_tag(),
        std::env::temp_dir().join("ignis-images"),
        "images".into(),
    );
    docker_config.socket = settings.docker_socket.clone();
    let backend = DockerBackend::connect(docker_config).await?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    let tag =
        ignis_docker::image::ensure_docker_image(backend.docker(), &image_dir, force, &|line| {
            let line = line.trim();
            if line.starts_with("step:") || line.starts_with("image") || line.starts_with("root") {
                if bar.is_hidden() {
                    // Not a terminal (CI logs): plain lines instead of a spinner.
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            }
            bar.set_message(line.chars().take(100).collect::<String>());
        })
        .await?;
    if ignis_microvm::image::installed_kernel().is_some() {
        let a = ignis_microvm::image::ensure_microvm_image(&image_dir, &|line| {
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        })
        .await?;
        bar.println(format!("microvm image ready: {}", a.rootfs.display()));
    } else {
        bar.println(
            "microvm image skipped: no kernel in /boot (apt-get install linux-image-amd64)",
        );
    }
    bar.finish_and_clear();
    println!("{tag} ready ({:.1} s)", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// `ignis admin reset-key`: a new admin key for a data directory, offline.
pub async fn reset_key(
    data_dir: &std::path::Path,
    revoke_others: bool,
) -> anyhow::Result<ExitCode> {
    if !data_dir.join("ignis.db").exists() {
        anyhow::bail!("{} holds no ignis database", data_dir.display());
    }
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(data_dir)
            .with_context(|| format!("opening the store in {}", data_dir.display()))?,
    );
    let auth = ignis_auth::Auth::load(
        store,
        Arc::new(ignis_auth::SystemClock),
        ignis_auth::AuthConfig::default(),
    )
    .await?;
    let (secret, record) = auth
        .create_key(ignis_auth::KeySpec {
            name: "admin (reset-key)".into(),
            role: ignis_core::auth::Role::Admin,
            namespaces: ignis_core::auth::Namespaces::All,
            expires_at_ms: None,
        })
        .await?;
    let mut revoked = 0;
    if revoke_others {
        for k in auth.list_keys() {
            if k.id != record.id
                && k.role == ignis_core::auth::Role::Admin
                && k.revoked_at_ms.is_none()
            {
                auth.revoke_key(&k.id).await?;
                revoked += 1;
            }
        }
    }
    let file = data_dir.join("admin.key");
    ignis_auth::write_key_file(&file, &secret)
        .with_context(|| format!("writing {}", file.display()))?;
    println!("{}", secret.expose());
    eprintln!(
        "new admin key {} written to {} (mode 0600){}; restart the server for it to take effect",
        record.id,
        file.display(),
        if revoke_others {
            format!(", {revoked} other admin key(s) revoked")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
