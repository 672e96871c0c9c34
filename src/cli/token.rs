//! `filegate token ...`: bearer tokens for the HTTP gateway, on a stopped server's store.

use std::time::SystemTime;

use clap::Subcommand;
use filegate_core::token;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a signed token for a user; prints it on stdout
    Issue {
        #[arg(long)]
        user: String,
        /// Lifetime: 3600, 90s, 15m, 1h, 7d
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The token only reads (GET, HEAD, listings)
        #[arg(long)]
        read_only: bool,
        /// Limit the token to this directory (in the user's view)
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Revoke every token the user holds now
    Revoke {
        #[arg(long)]
        user: String,
    },
}

pub fn run(config: &Config, cmd: TokenCommand) -> anyhow::Result<()> {
    let store = super::open_store(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cmd {
            TokenCommand::Issue {
                user,
                ttl,
                read_only,
                prefix,
            } => {
                let request = token::IssueRequest {
                    ttl: token::parse_ttl(&ttl)?,
                    read_only,
                    prefix,
                };
                let (token, _) =
                    token::issue_for_user(&store, &user, &request, SystemTime::now()).await?;
                println!("{token}");
            }
            TokenCommand::Revoke { user } => {
                let generation = token::revoke(&store, &user).await?;
                println!("revoked every token of {user} (generation now {generation})");
            }
        }
        filegate_core::Storage::flush(&store).await?;
        anyhow::Ok(())
    })
}
