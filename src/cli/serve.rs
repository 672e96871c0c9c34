//! `filegate serve`: both front ends on one store, with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use filegate_core::{password, AnonymousAccess, Permissions, Services, User, VPath};
use filegate_ftpd::FtpServer;
use filegate_httpd::HttpServer;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Pending connections the kernel queues per listener: enough for a burst of clients that
/// connect at the same instant.
const BACKLOG: u32 = 1024;

pub fn run(config: Config) -> anyhow::Result<()> {
    super::logging::init(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Installed first, so a signal that arrives while starting up still shuts down cleanly.
    let stop = stop_signal()?;
    let store = Arc::new(super::open_store(&config)?);
    bootstrap_admin(&*store, config.admin_password.as_deref()).await?;
    let anonymous = if config.anonymous.enabled {
        Some(AnonymousAccess {
            root: VPath::parse(&config.anonymous.root)
                .map_err(|e| anyhow::anyhow!("anonymous.root {:?}: {e}", config.anonymous.root))?,
        })
    } else {
        None
    };
    let services = Services::new(Arc::clone(&store), anonymous);

    let ftp_listener = bind(config.ftp.addr)
        .await
        .context("cannot listen for FTP")?;
    let http_listener = bind(config.http.addr)
        .await
        .context("cannot listen for HTTP")?;
    tracing::info!(
        ftp = %ftp_listener.local_addr()?,
        http = %http_listener.local_addr()?,
        data_dir = %config.data_dir.display(),
        "filegate serving"
    );

    let shutdown = CancellationToken::new();
    let ftp = tokio::spawn(
        FtpServer::new(config.ftp.clone(), services.clone()).run(ftp_listener, shutdown.clone()),
    );
    let http = tokio::spawn(
        HttpServer::new(config.http.clone(), services.clone()).run(http_listener, shutdown.clone()),
    );

    let mut servers = tokio::spawn(async move {
        let (f, h) = tokio::join!(ftp, http);
        f.context("ftp server task")?.context("ftp server")?;
        h.context("http server task")?.context("http server")?;
        anyhow::Ok(())
    });
    tokio::select! {
        // A front end that stops on its own is an error worth exiting for.
        r = &mut servers => { r??; return Ok(()); }
        _ = stop => {}
    }
    let grace = Duration::from_secs(config.grace_period_secs);
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: no new connections, transfers may finish"
    );
    shutdown.cancel();
    match tokio::time::timeout(grace, &mut servers).await {
        Ok(r) => r??,
        Err(_) => {
            tracing::warn!("grace period over; closing the remaining connections");
            servers.abort();
        }
    }
    services
        .storage
        .flush()
        .await
        .context("flushing the store")?;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Resolves on the first SIGINT or SIGTERM; both handlers are registered when this returns.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// On first start (no users) creates `admin`; on later starts sets admin's password if one is
/// given.
async fn bootstrap_admin(
    accounts: &dyn filegate_core::Accounts,
    admin_password: Option<&str>,
) -> anyhow::Result<()> {
    let users = accounts.users().await?;
    if users.is_empty() {
        let (pass, generated) = match admin_password {
            Some(p) => (p.to_owned(), false),
            None => (password::random_password(), true),
        };
        let admin = User {
            name: "admin".into(),
            password_hash: password::hash_async(pass.clone()).await?,
            home: "/".into(),
            permissions: Permissions::all(),
            disabled: false,
            token_generation: 0,
        };
        accounts.create_user(&admin).await?;
        if generated {
            println!("created user admin with password {pass}  (shown once; change it with `filegate user passwd admin`)");
        } else {
            println!("created user admin with the given password");
        }
    } else if let Some(p) = admin_password {
        match accounts.user("admin").await? {
            Some(mut admin) => {
                admin.password_hash = password::hash_async(p.to_owned()).await?;
                accounts.update_user(&admin).await?;
                tracing::info!("admin password set from --admin-password");
            }
            None => tracing::warn!("--admin-password given but there is no user admin"),
        }
    }
    Ok(())
}
