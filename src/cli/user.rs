//! `filegate user ...`: account management on a stopped server's store.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use clap::Subcommand;
use filegate_core::accounts::valid_user_name;
use filegate_core::{password, Accounts, Permissions, User, VPath};

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is asked for (no echo) or read from stdin
    Add {
        name: String,
        /// The user's root in the store; created if missing
        #[arg(long, default_value = "/")]
        home: String,
        /// Comma-separated: list,read,write,delete,mkdir,rename, or all, read-only, none
        #[arg(long, default_value = "all")]
        perms: String,
    },
    /// List users
    List,
    /// Change a user's password
    Passwd { name: String },
    /// Delete a user (their files stay)
    Del { name: String },
    /// Set a user's permissions, and optionally home and enabled state
    Grant {
        name: String,
        /// Comma-separated: list,read,write,delete,mkdir,rename, or all, read-only, none
        perms: String,
        #[arg(long)]
        home: Option<String>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
}

pub fn run(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = super::open_store(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(apply(&store, cmd))?;
    runtime.block_on(filegate_core::Storage::flush(&store))?;
    Ok(())
}

async fn apply(store: &filegate_core::SledStore, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { name, home, perms } => {
            if !valid_user_name(&name) {
                bail!("invalid user name {name:?}: use 1-64 letters, digits, '.', '_', '-', '@'");
            }
            if store.user(&name).await?.is_some() {
                bail!("user {name} already exists");
            }
            let permissions = Permissions::parse_list(&perms).map_err(anyhow::Error::msg)?;
            let home = ensure_home(store, &home).await?;
            let pass = read_password(&format!("password for {name}"))?;
            let user = User {
                name: name.clone(),
                password_hash: password::hash_async(pass).await?,
                home: home.to_string(),
                permissions,
                disabled: false,
                token_generation: 0,
            };
            store.create_user(&user).await?;
            println!("added user {name} (home {home}, {})", permissions.to_list());
        }
        UserCommand::List => {
            println!("{:<20} {:<24} {:<40} state", "name", "home", "permissions");
            for u in store.users().await? {
                println!(
                    "{:<20} {:<24} {:<40} {}",
                    u.name,
                    u.home,
                    u.permissions.to_list(),
                    if u.disabled { "disabled" } else { "enabled" }
                );
            }
        }
        UserCommand::Passwd { name } => {
            let mut user = existing(store, &name).await?;
            let pass = read_password(&format!("new password for {name}"))?;
            user.password_hash = password::hash_async(pass).await?;
            store.update_user(&user).await?;
            println!("password of {name} changed");
        }
        UserCommand::Del { name } => {
            existing(store, &name).await?;
            store.delete_user(&name).await?;
            println!("deleted user {name}");
        }
        UserCommand::Grant {
            name,
            perms,
            home,
            disable,
            enable,
        } => {
            let mut user = existing(store, &name).await?;
            user.permissions = Permissions::parse_list(&perms).map_err(anyhow::Error::msg)?;
            if let Some(h) = home {
                user.home = ensure_home(store, &h).await?.to_string();
            }
            if disable {
                user.disabled = true;
            }
            if enable {
                user.disabled = false;
            }
            store.update_user(&user).await?;
            println!(
                "{name}: home {}, {}, {}",
                user.home,
                user.permissions.to_list(),
                if user.disabled { "disabled" } else { "enabled" }
            );
        }
    }
    Ok(())
}

async fn existing(store: &filegate_core::SledStore, name: &str) -> anyhow::Result<User> {
    store
        .user(name)
        .await?
        .with_context(|| format!("no user {name}"))
}

/// Parses a home and creates it (and its parents) in the store if missing.
async fn ensure_home(store: &filegate_core::SledStore, home: &str) -> anyhow::Result<VPath> {
    use filegate_core::{Storage, StoreError};
    let home = VPath::parse(home).map_err(|e| anyhow::anyhow!("home {home:?}: {e}"))?;
    let mut at = VPath::root();
    for seg in home.segments() {
        at = at.child(seg)?;
        match store.mkdir(&at).await {
            Ok(_) | Err(StoreError::AlreadyExists) => {}
            Err(e) => bail!("cannot create home {home}: {e}"),
        }
        if !store.stat(&at).await?.is_dir() {
            bail!("home {home}: {at} is a file");
        }
    }
    Ok(home)
}

/// Asks twice without echo on a terminal; reads one line from stdin otherwise (scripts).
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let pass = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{prompt}: "))?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if pass.is_empty() {
        bail!("empty password");
    }
    Ok(pass)
}
