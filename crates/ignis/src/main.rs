//! `ignis`: the server and its command-line client.

mod client;
mod config;
mod serve;

/// mimalloc: glibc's malloc and free were ~10% of the server's CPU on the
/// warm path (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Self-hosted serverless functions: deploy Python and JavaScript functions
/// and call them over HTTP, each call in an isolated sandbox.
#[derive(Debug, Parser)]
#[command(name = "ignis", version, propagate_version = true)]
struct Cli {
    /// Server to talk to (client commands).
    #[arg(long, global = true, env = "IGNIS_SERVER", value_name = "URL")]
    server: Option<String>,
    /// Print JSON instead of tables (client commands).
    #[arg(long, global = true)]
    json: bool,
    /// Configuration file (default: ./ignis.toml when it exists).
    #[arg(long, global = true, env = "IGNIS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// API key for client commands (default: the one `ignis login` stored).
    #[arg(
        long,
        global = true,
        env = "IGNIS_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    key: Option<String>,
    /// Namespace of the functions client commands act on.
    #[arg(long, global = true, env = "IGNIS_NAMESPACE", value_name = "NS")]
    namespace: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: the API, the engine and the sandboxes.
    Serve(ServeArgs),
    /// Deploy and manage functions.
    #[command(subcommand, name = "fn")]
    Function(FnCommand),
    /// Call a function and print its result.
    Invoke {
        name: String,
        /// The event, as JSON.
        #[arg(long, conflicts_with = "data_file")]
        data: Option<String>,
        /// Read the event from a file (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        data_file: Option<PathBuf>,
    },
    /// Show a function's recent invocations with their logs.
    Logs {
        name: String,
        /// How many invocations, newest first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Build the sandbox images.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Live view of the server: calls, latencies, errors, sandboxes, resources.
    Top {
        /// Print one snapshot and exit.
        #[arg(long)]
        once: bool,
    },
    /// Store a server and a key (~/.config/ignis/config.toml, mode 0600) for
    /// every later client command. The key comes from --key, IGNIS_API_KEY
    /// or standard input.
    Login,
    /// Show the key in use: its name, role and namespaces.
    Whoami,
    /// Create, list and revoke API keys (admin).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Offline maintenance of a data directory (the server need not run).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List keys (never their secrets).
    Ls,
    /// Create a key; its secret is printed once.
    Create {
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// admin, developer, viewer or invoker.
        #[arg(long, value_parser = wire::<ignis_core::auth::Role>)]
        role: ignis_core::auth::Role,
        /// A namespace the key applies to (repeatable; default: all).
        #[arg(long = "for-namespace", value_name = "NS")]
        namespaces: Vec<String>,
        /// The key stops working after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        expires_in_s: Option<u64>,
    },
    /// Revoke a key by id (`key-...`); its console sessions end.
    Revoke { id: String },
    /// New AWS credentials (SigV4) for a key, for boto3 and the aws CLI
    /// against the Lambda-compatible API; the secret is printed once.
    AwsCredentials {
        /// The key (`key-...`) whose role and namespaces they carry.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Creates a new admin key for a lost one, writes it to
    /// DATA_DIR/admin.key and prints it. Restart the server afterwards.
    ResetKey {
        #[arg(long, env = "IGNIS_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
        /// Also revoke every other admin key.
        #[arg(long)]
        revoke_others: bool,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    settings: config::SettingsLayer,
    /// Shorthand for --docker=false.
    #[arg(long)]
    no_docker: bool,
    /// Shorthand for --microvm=off.
    #[arg(long)]
    no_microvm: bool,
    /// Shorthand for --record=false.
    #[arg(long)]
    no_record: bool,
    /// Shorthand for --auth=off.
    #[arg(long, env = "IGNIS_NO_AUTH")]
    no_auth: bool,
    /// Print the effective configuration (an ignis.toml, secrets redacted)
    /// and exit.
    #[arg(long)]
    print_config: bool,
}

impl ServeArgs {
    /// The settings, from defaults, `file`, then environment and flags.
    fn settings(self, file: config::SettingsLayer) -> config::Settings {
        let shorthands = config::SettingsLayer {
            docker: self.no_docker.then_some(false),
            microvm: self.no_microvm.then_some(config::Enable::Off),
            record: self.no_record.then_some(false),
            auth: self.no_auth.then_some(config::AuthMode::Off),
            ..Default::default()
        };
        config::Settings::layered([file, self.settings, shorthands])
    }
}

#[derive(Debug, Subcommand)]
enum FnCommand {
    /// Create a function from a directory of code.
    Create(FnSpec),
    /// Update a function's code and/or configuration.
    Update(FnSpec),
    /// List functions.
    Ls,
    /// Show one function.
    Get { name: String },
    /// Delete a function.
    Rm { name: String },
}

#[derive(Debug, Args)]
pub struct FnSpec {
    name: String,
    /// `python3` or `nodejs`.
    #[arg(long, value_parser = wire::<ignis_core::Runtime>)]
    runtime: Option<ignis_core::Runtime>,
    /// FILE.FUNCTION, e.g. `main.handler`.
    #[arg(long)]
    handler: Option<String>,
    /// Directory holding the code (zipped and uploaded).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// HTTP trigger path, e.g. `/hello` (served at /fn/hello).
    #[arg(long)]
    route: Option<String>,
    /// `docker` or `microvm`.
    #[arg(long, value_parser = wire::<ignis_core::BackendKind>)]
    backend: Option<ignis_core::BackendKind>,
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    #[arg(long, value_name = "MIB")]
    memory_mb: Option<u32>,
    #[arg(long)]
    cpus: Option<f64>,
    /// Environment variable for the handler (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    #[arg(long)]
    min_warm: Option<u32>,
    #[arg(long)]
    max_concurrency: Option<u32>,
    #[arg(long)]
    batch_max_size: Option<u32>,
    #[arg(long, value_name = "MS")]
    batch_max_wait_ms: Option<u64>,
    #[arg(long, value_name = "MS")]
    queue_timeout_ms: Option<u64>,
    #[arg(long, value_name = "SECONDS")]
    keep_alive_s: Option<u64>,
    /// Who may call the HTTP trigger: `key` (default) or `none` (public).
    #[arg(long, value_name = "none|key", value_parser = wire::<ignis_core::HttpAuth>)]
    http_auth: Option<ignis_core::HttpAuth>,
    /// Whether async Node.js handlers of one batch may run concurrently.
    #[arg(long)]
    batch_concurrent: Option<bool>,
    /// What the function is for.
    #[arg(long)]
    description: Option<String>,
    /// An IAM role ARN (stored for the AWS API, not enforced; empty removes it).
    #[arg(long, value_name = "ARN")]
    role: Option<String>,
    /// Retries of an asynchronous call after a failed attempt (0..=2).
    #[arg(long, value_name = "N")]
    async_max_retries: Option<u32>,
    /// Seconds an asynchronous call may wait for a successful attempt.
    #[arg(long, value_name = "SECONDS")]
    async_max_age_s: Option<u64>,
    /// The alias or version the HTTP trigger calls (empty: the latest).
    #[arg(long, value_name = "QUALIFIER")]
    http_qualifier: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ImagesCommand {
    /// Build the runtime image from Debian packages (cached by recipe hash).
    Build {
        /// The same settings as `ignis serve` (image_dir, docker_socket,
        /// qemu are the ones used).
        #[command(flatten)]
        settings: Box<config::SettingsLayer>,
        /// Rebuild even when the image exists.
        #[arg(long)]
        force: bool,
    },
}

/// Parses a flag's value as the server parses the same field: one
/// vocabulary, one error message.
fn wire<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, String> {
    T::deserialize(serde_json::Value::String(value.to_string())).map_err(|e| e.to_string())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let file = config::FileConfig::load(cli.config.as_deref())?;
    let login = client::Login::load()?;
    let server = cli
        .server
        .clone()
        .or(login.server.clone())
        .or(file.server.clone())
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
    let key = cli.key.clone().or(login.key.clone());
    match cli.command {
        Command::Admin(AdminCommand::ResetKey {
            data_dir,
            revoke_others,
        }) => serve::reset_key(&data_dir, revoke_others).await,
        Command::Login => client::login(&server, key).await,
        Command::Serve(args) => {
            let print = args.print_config;
            let config = args.settings(file.serve).resolve()?;
            if print {
                print!("{}", config.settings.to_toml()?);
                if config.settings.microvm == config::Enable::Auto {
                    let on = if config.microvm { "on" } else { "off" };
                    println!("# microvm = \"auto\" is {on} on this host");
                }
                return Ok(std::process::ExitCode::SUCCESS);
            }
            serve::run(config).await
        }
        Command::Images(ImagesCommand::Build { settings, force }) => {
            let settings = config::Settings::layered([file.serve, *settings]);
            serve::build_images(&settings, force).await
        }
        other => {
            let namespace = cli.namespace.clone();
            let client = client::Client::new(&server, cli.json, key, namespace)?;
            client.run(other).await
        }
    }
}
