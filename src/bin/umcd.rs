//! umcd: the umc server. Runs on embedded defaults: `./umc-data` (or `$UMC_DATA`), a signing
//! key and an admin token created on first start, 127.0.0.1:8080.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use umc::app::{self, App};
use umc::config::Config;
use umc::http::{self, AppState};
use umc::sign::SigningKeys;
use umc::store::{self, Store};

#[derive(Parser)]
#[command(
    name = "umcd",
    version,
    about = "umc server: a signed apt repository per host, synthesized from the fleet model"
)]
struct Args {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "UMC_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Data directory: database, signing key, admin token [default: ./umc-data]
    #[arg(long, env = "UMC_DATA", global = true)]
    data_dir: Option<PathBuf>,
    /// TOML configuration file; every key is optional (contrib/umcd.toml lists and explains
    /// each); flags and environment override it
    #[arg(long, env = "UMC_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// When to serve HTTPS: auto (unless listening on loopback only), on, off
    /// [default: auto]
    #[arg(long, env = "UMC_TLS", value_parser = ["auto", "on", "off"])]
    tls: Option<String>,
    /// The certificate chain umcd serves (PEM); without it, umcd's own CA issues one
    #[arg(long, env = "UMC_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, env = "UMC_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A name or address the certificate must cover (repeatable); umcd's own CA issues for
    /// these [default: this host's name, localhost and the loopback addresses]
    #[arg(long = "tls-name", env = "UMC_TLS_NAMES", value_delimiter = ',')]
    tls_names: Vec<String>,
    /// Without a command, umcd serves
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Recreate a server's data directory from `umc-admin backup`'s file (the directory must be
    /// new or empty); every package then moves above what nodes may have seen
    Restore {
        /// The backup file (`-` reads standard input)
        file: PathBuf,
    },
}

fn write_secret(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The admin token: `<data>/admin.token`, made on first start; the token of user `admin`
/// labelled `admin.token` (an `admin`-role user, created here when missing).
fn admin_token(store: &Store, data: &Path) -> Result<()> {
    let path = data.join("admin.token");
    let token = match std::fs::read_to_string(&path) {
        Ok(t) => t.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let t = store::random_token();
            write_secret(&path, format!("{t}\n").as_bytes())?;
            eprintln!("umcd: created admin token in {}", path.display());
            t
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if token.is_empty() {
        anyhow::bail!(
            "{} is empty; delete it to create a new token",
            path.display()
        );
    }
    // The bootstrap token's user is always an admin (recreated if someone removed it).
    store.ensure_admin_user("admin", app::now())?;
    // Only the previous admin.token stops working; tokens made with `token create` stay.
    for t in store.replace_bootstrap_token("admin", &token, app::now())? {
        eprintln!(
            "umcd: revoked the previous admin.token (token id {}): {} holds a new one",
            t.id,
            path.display()
        );
    }
    Ok(())
}

/// A data directory whose admin token outlived its database lost the database: starting would
/// make a new, empty server behind the old token and key, whose package versions start again
/// below what the nodes have. (A signing key alone is how a server is moved with `import`.)
fn refuse_lost_database(data: &Path, db: &Path) -> Result<()> {
    let token = data.join("admin.token");
    if !db.exists() && token.exists() {
        anyhow::bail!(
            "{} exists but the database {} does not: refusing to start a new server in place of the lost one; restore a backup (umcd restore), or delete {} to start a new server here",
            token.display(),
            db.display(),
            token.display()
        );
    }
    Ok(())
}

/// `umcd restore <file>`: see `umc::backup::restore`.
fn restore(file: &Path, data: &Path) -> Result<()> {
    let input: Box<dyn std::io::Read> = if file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
        ))
    };
    let r = umc::backup::restore(input, data, app::now())
        .with_context(|| format!("restoring {} into {}", file.display(), data.display()))?;
    let m = &r.manifest;
    println!(
        "umcd: restored {} into {}: generation {} (taken {}, database schema {})",
        file.display(),
        data.display(),
        m.generation,
        umc::time::release_date(m.taken_at),
        m.schema,
    );
    for f in &r.files {
        println!("  {}", f.display());
    }
    if let Some(mig) = &r.migration {
        println!(
            "umcd: migrated the database from schema {} to {} (old copy: {})",
            mig.from,
            mig.to,
            mig.backup.display()
        );
    }
    println!("umcd: generation {}: {}", r.generation, r.reason);
    println!("umcd: start it with: umcd --data-dir {}", data.display());
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed before this returns, so a signal
/// that arrives right after startup is not lost.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("umcd: shutting down");
    })
}

/// Every connection costs a descriptor: take the whole hard limit, and say so when even that
/// is too low for the connections umcd serves at once.
fn open_file_limit() {
    match http::raise_open_file_limit() {
        Ok(Some(n)) if n < http::open_files_wanted() => eprintln!(
            "umcd: warning: the open-file limit is {n}, too low for {} connections; \
             raise it (LimitNOFILE= in the systemd unit)",
            http::MAX_CONNECTIONS
        ),
        Ok(_) => {}
        Err(e) => eprintln!("umcd: warning: raising the open-file limit: {e}"),
    }
}

fn main() {
    // `umcd __render-worker`: renders one batch of templates within its limits (umc::sandbox).
    // Checked before the runtime starts, so the worker stays one small thread.
    if std::env::args_os().nth(1).as_deref() == Some(umc::sandbox::WORKER_ARG.as_ref()) {
        std::process::exit(umc::sandbox::worker_main());
    }
    serve();
}

#[tokio::main]
async fn serve() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run().await {
        eprintln!("umcd: {}", chain(&e));
        std::process::exit(1);
    }
}

/// `{e:#}` without repeats: umc's errors name their source in their own message and also
/// return it as `source()` (so callers can inspect it), and anyhow's `{:#}` would print that
/// source a second time.
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn run() -> Result<()> {
    // Everything umcd creates (database, backups and their temporary files, keys) is for umcd
    // alone; the places that write secrets also set 0600 themselves.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let args = Args::parse();
    let mut config = Config::default();
    if let Some(path) = &args.config {
        config.apply_file(path)?;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(t) = &args.tls {
        config.tls = umc::tls::Mode::parse(t).unwrap_or_default();
    }
    if args.tls_cert.is_some() {
        config.tls_cert = args.tls_cert.clone();
        config.tls_key = args.tls_key.clone();
    }
    if !args.tls_names.is_empty() {
        config.tls_names = args.tls_names.clone();
    }
    config.validate()?;
    let data = config.data_dir.clone();
    if let Some(Command::Restore { file }) = &args.command {
        return restore(file, &data);
    }
    // Edits and previews render their templates in umcd re-executed, with a deadline and a
    // memory limit: the same binary as this process even if an upgrade replaced the file.
    umc::sandbox::use_worker("/proc/self/exe");
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("securing {}", data.display()))?;

    let db = data.join("umc.redb");
    refuse_lost_database(&data, &db)?;
    // A new database beside a key that has signed before: this may be a server whose database
    // was lost. Its versions must start above anything nodes saw, as after an import.
    let new_beside_old_key = !db.exists() && data.join(umc::sign::SIGNING_KEY_FILE).exists();
    let opened = std::time::Instant::now();
    let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    if new_beside_old_key {
        let now = u64::try_from(app::now()).unwrap_or(0);
        store
            .set_generation_floor(now)
            .context("lifting the generation floor of the new database")?;
        eprintln!(
            "umcd: new database beside an existing signing key: generations start above {now} (the current Unix time), so no version goes below what nodes may have"
        );
    }
    tracing::info!(
        "opened {} (integrity checked) in {:?}",
        db.display(),
        opened.elapsed()
    );
    if let Some(m) = store.migration() {
        eprintln!(
            "umcd: migrated the database from schema {} to {}; the old one is kept as {}",
            m.from,
            m.to,
            m.backup.display()
        );
    }
    admin_token(&store, &data)?;
    let host = umc::config::hostname().unwrap_or_else(|| "localhost".into());
    let (keys, created) =
        SigningKeys::load_or_generate(&data, &format!("umc archive signing key <umc@{host}>"))?;
    if created {
        eprintln!(
            "umcd: created signing key {} in {}",
            keys.fingerprints().join(", "),
            data.display()
        );
    }
    let tls = load_tls(&mut config)?;
    // Inputs of every host's repository besides the model; a change moves all Release dates.
    let umc::store::ServingInputs {
        fingerprint,
        description,
    } = app::serving_inputs(&config, &keys.fingerprints());
    if let Some(g) = store.note_serving_inputs(fingerprint, &description, app::now())? {
        eprintln!("umcd: serving configuration changed ({description}); generation {g}");
    }
    open_file_limit();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App::new(store, keys, config)?);
    let state = Arc::new(AppState::new(app)?);
    let shutdown = shutdown_signal()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("umcd listening on {scheme}://{addr}");
    if let Some(t) = &tls {
        println!("umcd certificate pin {}", t.pin());
    }
    std::io::stdout().flush()?;
    http::run(listener, state, tls, shutdown).await?;
    Ok(())
}

/// The certificate umcd serves, if any (made on first start with its own CA); what nodes
/// trust goes into `config.tls_node_ca`, a serving input.
fn load_tls(config: &mut Config) -> Result<Option<Arc<umc::tls::Tls>>> {
    let Some(source) = config.tls_source()? else {
        return Ok(None);
    };
    let names = config.tls_names_for(&source);
    let tls = umc::tls::Tls::load(
        source,
        names,
        config.tls_ca.as_deref(),
        std::time::SystemTime::now(),
    )
    .context("tls")?;
    config.tls_node_ca = tls.node_ca().map(str::to_string);
    Ok(Some(Arc::new(tls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_names_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = anyhow::Error::from(umc::store::StoreError::Io {
            what: "creating",
            path: "/d/umc.redb".into(),
            source: io,
        })
        .context("opening /d/umc.redb");
        assert_eq!(
            chain(&e),
            "opening /d/umc.redb: database: creating /d/umc.redb: permission denied"
        );
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(chain(&e), "outer: inner");
    }
}
