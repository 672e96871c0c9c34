//! An in-process server for the rows a single `filegate serve` cannot show: two FTP and two
//! HTTP listeners over one store (row 8), and account changes made while clients work
//! (row 7; `filegate serve` has no online admin interface, and its store is locked).
//!
//! It is wired like `filegate serve`: one `SledStore`, one `Services`, the same `FtpServer` and
//! `HttpServer` with default settings, each on its own loopback listener.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use filegate_core::{password, Accounts, Permissions, Services, SledOptions, SledStore, User};
use filegate_ftpd::{FtpConfig, FtpServer, PortRange};
use filegate_httpd::{HttpConfig, HttpServer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::server::free_port_range;

/// The running lab.
pub struct Lab {
    /// The store, kept to change accounts through the same handle the front ends watch.
    store: Arc<SledStore>,
    pub ftp: [SocketAddr; 2],
    pub http: [SocketAddr; 2],
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// Holds the store's files; removed when the lab is dropped.
    _dir: tempfile::TempDir,
}

impl Lab {
    pub async fn start() -> anyhow::Result<Lab> {
        let dir = tempfile::Builder::new()
            .prefix("filegate-compare-lab-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let options = SledOptions {
            cache_capacity: 16 * 1024 * 1024,
            ..Default::default()
        };
        let (store, _) = SledStore::open(&dir.path().join("data"), &options)
            .map_err(|e| anyhow::anyhow!("cannot open the lab store: {e}"))?;
        let store = Arc::new(store);
        let services = Services::new(Arc::clone(&store), None);
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut ftp = Vec::new();
        let mut http = Vec::new();
        for _ in 0..2 {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            ftp.push(l.local_addr()?);
            let (first, last) = free_port_range(100)?;
            let config = FtpConfig {
                addr: l.local_addr()?,
                passive_ports: PortRange { first, last },
                ..FtpConfig::default()
            };
            let server = FtpServer::new(config, services.clone());
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = server.run(l, stop).await {
                    eprintln!("compare: lab ftp listener stopped: {e}");
                }
            }));
            let l = TcpListener::bind("127.0.0.1:0").await?;
            http.push(l.local_addr()?);
            let config = HttpConfig {
                addr: l.local_addr()?,
                ..HttpConfig::default()
            };
            let server = HttpServer::new(config, services.clone());
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = server.run(l, stop).await {
                    eprintln!("compare: lab http listener stopped: {e}");
                }
            }));
        }
        Ok(Lab {
            store,
            ftp: [ftp[0], ftp[1]],
            http: [http[0], http[1]],
            shutdown,
            tasks,
            _dir: dir,
        })
    }

    /// Adds a user with all permissions and home `/`.
    pub async fn add_user(&self, name: &str, pass: &str) -> anyhow::Result<()> {
        let user = User {
            name: name.to_owned(),
            password_hash: password::hash_async(pass.to_owned()).await?,
            home: "/".into(),
            permissions: Permissions::all(),
            disabled: false,
            token_generation: 0,
        };
        self.store.create_user(&user).await?;
        Ok(())
    }

    /// An argon2 hash of `pass`, made ahead so a revocation's timing does not include it.
    pub async fn hash(pass: &str) -> anyhow::Result<String> {
        Ok(password::hash_async(pass.to_owned()).await?)
    }

    /// Revokes a user the way an administrator would: a new password (already hashed), then
    /// every token's generation bumped. Returns when both are in the store.
    pub async fn revoke(&self, name: &str, hash: String) -> anyhow::Result<()> {
        let mut user = self.store.user(name).await?.context("no such user")?;
        user.password_hash = hash;
        self.store.update_user(&user).await?;
        self.store.bump_token_generation(name).await?;
        Ok(())
    }

    /// Stops every listener and waits for them (bounded).
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
    }
}
