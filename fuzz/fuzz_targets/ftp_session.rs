//! The whole FTP session fed arbitrary command sequences against a temporary store: it never
//! panics, every reply is well formed with an RFC code, and nothing outside the user's home is
//! ever written or named as a transfer target.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use filegate_core::{body_from_bytes, Permissions, Services, SledOptions, SledStore, Storage, User, VPath};
use filegate_ftpd::parser::parse_command;
use filegate_ftpd::session::{Action, Direction, Session, SessionSettings, TransferResult};
use libfuzzer_sys::fuzz_target;

/// Codes RFC 959, 2228, 2428, 3659 and 7151 define.
const RFC_CODES: &[u16] = &[
    110, 120, 125, 150, 200, 202, 211, 212, 213, 214, 215, 220, 221, 225, 226, 227, 229, 230,
    250, 257, 331, 332, 350, 421, 425, 426, 450, 451, 452, 500, 501, 502, 503, 504, 522, 530,
    532, 550, 551, 552, 553, 554, 555,
];

struct World {
    rt: tokio::runtime::Runtime,
    services: Services,
    home: VPath,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (store, _) = SledStore::open(dir.path(), &SledOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let store = Arc::new(store);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        // A cheap hash: fuzzing is about the session, not argon2's cost.
        let params = argon2::Params::new(8, 1, 1, None).unwrap_or_else(|e| panic!("{e}"));
        let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"fuzzsaltfuzzsalt").unwrap_or_else(|e| panic!("{e}"));
        let hash = hasher.hash_password(b"pw", &salt).unwrap_or_else(|e| panic!("{e}")).to_string();
        let home = VPath::parse("/home/fuzz").unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async {
            use filegate_core::Accounts;
            let _ = store.mkdir(&VPath::parse("/home").unwrap_or_else(|e| panic!("{e}"))).await;
            let _ = store.mkdir(&home).await;
            let _ = store.write(&VPath::parse("/outside").unwrap_or_else(|e| panic!("{e}")), filegate_core::WriteMode::Replace, filegate_core::Precondition::None, body_from_bytes("x")).await;
            let _ = store
                .create_user(&User {
                    name: "fuzz".into(),
                    password_hash: hash,
                    home: home.to_string(),
                    permissions: Permissions::all(),
                    disabled: false,
                    token_generation: 0,
                })
                .await;
        });
        let services = Services::new(store, None);
        World { rt, services, home, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let local: SocketAddr = ([127, 0, 0, 1], 2121).into();
    let mut session = Session::new(
        w.services.clone(),
        SessionSettings { peer, local, passive_address: None, active_mode: true },
    );
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut script: Vec<Vec<u8>> = vec![b"USER fuzz".to_vec(), b"PASS pw".to_vec()];
    script.extend(data.split(|&b| b == b'\n').take(64).map(|l| l.to_vec()));
    w.rt.block_on(async {
        for line in script {
            let outcome = session.handle(parse_command(&line), now).await;
            let mut replies = outcome.replies;
            match outcome.action {
                Action::OpenPassive => replies.push(session.passive_opened(Ok(50000))),
                Action::Transfer(t) => {
                    let result = match t.direction {
                        Direction::Receive { store_path, mode, precondition } => {
                            assert!(store_path.starts_with(&w.home), "upload to {store_path} outside the home");
                            let result = w.services.storage.write(&store_path, mode, precondition, body_from_bytes(line.clone())).await;
                            TransferResult::Stored { result, bytes: line.len() as u64 }
                        }
                        Direction::Send(_) => TransferResult::Sent { bytes: 0 },
                    };
                    replies.extend(session.transfer_done(t.verb, &result));
                }
                Action::Close => break,
                Action::None | Action::LoginFailed => {}
            }
            for r in &replies {
                assert!(RFC_CODES.contains(&r.code.as_u16()), "code {} is not in the RFCs", r.code.as_u16());
                let wire = r.encode();
                assert!(wire.ends_with(b"\r\n"));
            }
            if let Some(p) = session.principal() {
                let store_cwd = p.home.join_under(session.cwd()).unwrap_or_else(|e| panic!("{e}"));
                assert!(store_cwd.starts_with(&w.home));
            }
        }
        // Nothing outside the home was created, renamed or removed.
        let root = w.services.storage.list(&VPath::root()).await.unwrap_or_default();
        let names: Vec<&str> = root.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["home", "outside"], "the root changed");
        let home_parent = w.services.storage.list(&VPath::parse("/home").unwrap_or_else(|e| panic!("{e}"))).await.unwrap_or_default();
        assert_eq!(home_parent.len(), 1, "/home changed");
    });
});
