//! What a front end is handed: the store, the accounts, the login checker and the shared
//! gauges, all behind traits so another backend can stand in.

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::auth::Authenticator;
use crate::metrics::Gauges;
use crate::storage::Storage;

/// Cheap to clone; one per process, shared by every front end.
#[derive(Clone)]
pub struct Services {
    pub storage: Arc<dyn Storage>,
    pub accounts: Arc<dyn Accounts>,
    pub auth: Authenticator,
    pub gauges: Arc<Gauges>,
}

impl Services {
    /// Services over one backend that implements both traits.
    pub fn new<B: Storage + Accounts>(
        backend: Arc<B>,
        anonymous: Option<crate::auth::AnonymousAccess>,
    ) -> Self {
        let accounts: Arc<dyn Accounts> = backend.clone();
        Services {
            storage: backend,
            auth: Authenticator::new(Arc::clone(&accounts), anonymous),
            accounts,
            gauges: Arc::new(Gauges::default()),
        }
    }
}
