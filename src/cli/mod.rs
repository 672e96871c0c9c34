//! The command line: one module per subcommand.

mod compare;
mod logging;
mod serve;
mod token;
mod user;

use clap::{Parser, Subcommand};

use crate::config::ConfigArgs;

/// filegate: one file store served over FTP (stateful) and HTTP (stateless) at once.
#[derive(Debug, Parser)]
#[command(name = "filegate", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the store over FTP and HTTP until SIGINT or SIGTERM
    Serve,
    /// Print the effective configuration (defaults, file, environment and flags) as TOML
    Config,
    /// Manage users (on a stopped server's store)
    #[command(subcommand)]
    User(user::UserCommand),
    /// Issue or revoke bearer tokens for the HTTP gateway (on a stopped server's store)
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Measure the stateful (FTP) and stateless (HTTP) sides on the same work, side by side
    Compare(compare::CompareArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config.load()?;
    match cli.command {
        Command::Serve => serve::run(config),
        Command::Config => {
            let mut shown = config.clone();
            if shown.admin_password.is_some() {
                shown.admin_password = Some("(hidden)".into());
            }
            print!("{}", toml::to_string(&shown)?);
            Ok(())
        }
        Command::User(cmd) => user::run(&config, cmd),
        Command::Token(cmd) => token::run(&config, cmd),
        Command::Compare(args) => compare::run(&config, args),
    }
}

/// Opens the store for a CLI command, with a clear message if a server holds it.
pub fn open_store(config: &crate::config::Config) -> anyhow::Result<filegate_core::SledStore> {
    let options = filegate_core::SledOptions {
        cache_capacity: config.cache_mib.saturating_mul(1024 * 1024),
        ..Default::default()
    };
    match filegate_core::SledStore::open(&config.data_dir, &options) {
        Ok((store, _)) => Ok(store),
        Err(e @ filegate_core::StoreError::InUse(_)) => Err(anyhow::anyhow!(
            "{e}; stop the server first, or manage users through it"
        )),
        Err(e) => Err(anyhow::anyhow!(
            "cannot open the store at {}: {e}",
            config.data_dir.display()
        )),
    }
}
