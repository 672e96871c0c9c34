//! Accounts in the `users` tree, secrets in the `meta` tree.

use async_trait::async_trait;
use sled::transaction::{abort, ConflictableTransactionError};

use super::{tx_result, SledStore};
use crate::accounts::{AccountEvent, Accounts, User};
use crate::error::{StoreError, StoreResult};

/// First byte of every user record, so the format can change later.
const FORMAT: u8 = 1;

fn encode(user: &User) -> StoreResult<Vec<u8>> {
    let mut out = vec![FORMAT];
    out.extend(postcard::to_stdvec(user)?);
    Ok(out)
}

fn decode(bytes: &[u8]) -> StoreResult<User> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => Ok(postcard::from_bytes(rest)?),
        _ => Err(StoreError::Corrupt("user record of unknown format".into())),
    }
}

impl SledStore {
    async fn changed(&self, name: &str) -> StoreResult<()> {
        self.durable().await?;
        // Nobody listening is fine.
        let _ = self.events.send(AccountEvent::Changed {
            name: name.to_owned(),
        });
        Ok(())
    }
}

#[async_trait]
impl Accounts for SledStore {
    async fn user(&self, name: &str) -> StoreResult<Option<User>> {
        self.users.get(name)?.map(|v| decode(&v)).transpose()
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        self.users.iter().map(|item| decode(&item?.1)).collect()
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let swapped =
            self.users
                .compare_and_swap(&user.name, None as Option<&[u8]>, Some(encode(user)?))?;
        if swapped.is_err() {
            return Err(StoreError::AlreadyExists);
        }
        self.changed(&user.name).await
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let encoded = encode(user)?;
        tx_result(self.users.transaction(|tx| {
            if tx.get(&user.name)?.is_none() {
                return abort(StoreError::NotFound);
            }
            tx.insert(user.name.as_bytes(), encoded.as_slice())?;
            Ok(())
        }))?;
        self.changed(&user.name).await
    }

    async fn delete_user(&self, name: &str) -> StoreResult<()> {
        if self.users.remove(name)?.is_none() {
            return Err(StoreError::NotFound);
        }
        self.changed(name).await
    }

    async fn bump_token_generation(&self, name: &str) -> StoreResult<u64> {
        let generation = tx_result(self.users.transaction(|tx| {
            let Some(raw) = tx.get(name)? else {
                return abort(StoreError::NotFound);
            };
            let mut user = decode(&raw).map_err(ConflictableTransactionError::Abort)?;
            user.token_generation += 1;
            let encoded = encode(&user).map_err(ConflictableTransactionError::Abort)?;
            tx.insert(name.as_bytes(), encoded)?;
            Ok(user.token_generation)
        }))?;
        self.changed(name).await?;
        Ok(generation)
    }

    async fn secret(&self, name: &str, len: usize) -> StoreResult<Vec<u8>> {
        let key = format!("secret/{name}");
        if let Some(v) = self.meta.get(&key)? {
            return Ok(v.to_vec());
        }
        let fresh: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
        // Two callers racing both end up with whichever was stored first.
        match self
            .meta
            .compare_and_swap(&key, None as Option<&[u8]>, Some(fresh.as_slice()))?
        {
            Ok(()) => {
                self.durable().await?;
                Ok(fresh)
            }
            Err(cas) => Ok(cas.current.map(|v| v.to_vec()).unwrap_or(fresh)),
        }
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<AccountEvent> {
        self.events.subscribe()
    }
}
