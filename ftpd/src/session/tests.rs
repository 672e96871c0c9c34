//! The session state machine, driven without sockets: line in, replies and action out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use filegate_core::{
    body_from_bytes, password, Permissions, Precondition, Services, SledOptions, SledStore, User,
    VPath, WriteMode,
};

use super::*;
use crate::parser::parse_command;

const NOW: Duration = Duration::from_secs(1_800_000_000);

struct Harness {
    session: Session,
    services: Services,
    _dir: tempfile::TempDir,
}

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

/// One hash of "pw" for every test user (hashing is slow in debug builds).
fn pw_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| password::hash("pw").unwrap()).clone()
}

async fn add_user(services: &Services, name: &str, home: &str, permissions: Permissions) {
    services
        .accounts
        .create_user(&User {
            name: name.into(),
            password_hash: pw_hash(),
            home: home.into(),
            permissions,
            disabled: false,
            token_generation: 0,
        })
        .await
        .unwrap();
}

async fn harness_with(active_mode: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SledStore::open(dir.path(), &SledOptions::default()).unwrap();
    let services = Services::new(Arc::new(store), None);
    add_user(&services, "ann", "/", Permissions::all()).await;
    add_user(&services, "ro", "/", Permissions::LIST | Permissions::READ).await;
    services.storage.mkdir(&p("/home")).await.unwrap();
    services.storage.mkdir(&p("/home/bob")).await.unwrap();
    add_user(&services, "bob", "/home/bob", Permissions::all()).await;
    put(&services, "/file.txt", b"hello\nworld\n").await;
    services.storage.mkdir(&p("/dir")).await.unwrap();
    let settings = SessionSettings {
        peer: "127.0.0.1:40000".parse::<SocketAddr>().unwrap(),
        local: "127.0.0.1:2121".parse::<SocketAddr>().unwrap(),
        passive_address: None,
        active_mode,
    };
    Harness {
        session: Session::new(services.clone(), settings),
        services,
        _dir: dir,
    }
}

async fn harness() -> Harness {
    harness_with(true).await
}

async fn put(services: &Services, path: &str, data: &'static [u8]) {
    services
        .storage
        .write(
            &p(path),
            WriteMode::Replace,
            Precondition::None,
            body_from_bytes(data),
        )
        .await
        .unwrap();
}

impl Harness {
    async fn run(&mut self, line: &str) -> Outcome {
        self.session
            .handle(parse_command(line.as_bytes()), SystemTime::UNIX_EPOCH + NOW)
            .await
    }

    /// The first reply's code.
    async fn code(&mut self, line: &str) -> u16 {
        let out = self.run(line).await;
        out.replies.first().map_or(0, |r| r.code.as_u16())
    }

    async fn text(&mut self, line: &str) -> String {
        let out = self.run(line).await;
        String::from_utf8(out.replies.iter().flat_map(|r| r.encode()).collect()).unwrap()
    }

    async fn login(&mut self, user: &str) {
        assert_eq!(self.code(&format!("USER {user}")).await, 331);
        assert_eq!(self.code("PASS pw").await, 230);
    }

    async fn pasv(&mut self) {
        let out = self.run("PASV").await;
        assert!(matches!(out.action, Action::OpenPassive), "{out:?}");
        let r = self.session.passive_opened(Ok(50000));
        assert_eq!(r.code, Code::EnteringPassive);
    }
}

#[tokio::test]
async fn before_login_only_login_and_harmless_commands() {
    let mut h = harness().await;
    let refused = [
        "PWD",
        "XPWD",
        "CWD /",
        "CDUP",
        "MKD x",
        "RMD x",
        "DELE x",
        "RNFR x",
        "RNTO x",
        "TYPE I",
        "MODE S",
        "STRU F",
        "PASV",
        "EPSV",
        "PORT 127,0,0,1,4,1",
        "EPRT |1|127.0.0.1|1025|",
        "RETR x",
        "STOR x",
        "STOU",
        "APPE x",
        "REST 1",
        "ABOR",
        "LIST",
        "NLST",
        "MLSD",
        "MLST",
        "STAT",
        "SIZE x",
        "MDTM x",
        "SITE HELP",
        "ALLO 1",
    ];
    for line in refused {
        assert_eq!(h.code(line).await, 530, "{line}");
    }
    assert_eq!(h.code("FEAT").await, 211);
    assert_eq!(h.code("SYST").await, 215);
    assert_eq!(h.code("NOOP").await, 200);
    assert_eq!(h.code("HELP").await, 214);
    assert_eq!(h.code("OPTS UTF8 ON").await, 200);
    assert_eq!(h.code("HOST example.com").await, 220);
    assert_eq!(h.code("FOO").await, 500);
    assert_eq!(h.code("AUTH TLS").await, 502);
    let quit = h.run("QUIT").await;
    assert_eq!(quit.replies[0].code, Code::Closing);
    assert!(matches!(quit.action, Action::Close));
}

#[tokio::test]
async fn login_sequences() {
    let mut h = harness().await;
    assert_eq!(h.code("PASS pw").await, 503, "PASS without USER");
    assert_eq!(h.code("ACCT x").await, 503);
    assert_eq!(h.code("USER ann").await, 331);
    let out = h.run("PASS wrong").await;
    assert_eq!(out.replies[0].code, Code::NotLoggedIn);
    assert!(matches!(out.action, Action::LoginFailed));
    assert_eq!(
        h.code("PASS pw").await,
        503,
        "the failed PASS used up the USER"
    );
    assert_eq!(
        h.code("USER nobody").await,
        331,
        "unknown users get 331 too"
    );
    assert_eq!(h.code("PASS pw").await, 530);
    h.login("ann").await;
    assert_eq!(h.session.user(), Some("ann"));
    assert_eq!(h.code("PASS pw").await, 503, "already logged in");
    assert_eq!(h.code("ACCT x").await, 202);
    assert_eq!(h.code("HOST example.com").await, 503, "HOST after login");
    // REIN forgets the user and every setting.
    assert_eq!(h.code("TYPE I").await, 200);
    assert_eq!(h.code("REIN").await, 220);
    assert_eq!(h.code("PWD").await, 530);
    h.login("ro").await;
    assert_eq!(h.session.type_code, TypeCode::Ascii);
}

#[tokio::test]
async fn host_then_user() {
    let mut h = harness().await;
    assert_eq!(h.code("USER ann").await, 331);
    assert_eq!(h.code("HOST x").await, 503, "HOST between USER and PASS");
}

#[tokio::test]
async fn navigation_and_257_quoting() {
    let mut h = harness().await;
    h.login("ann").await;
    assert_eq!(
        h.text("PWD").await,
        "257 \"/\" is the current directory\r\n"
    );
    assert_eq!(h.text("MKD a\"b").await, "257 \"/a\"\"b\" created\r\n");
    assert_eq!(h.code("MKD a\"b").await, 550, "exists");
    assert_eq!(h.code("CWD a\"b").await, 250);
    assert_eq!(
        h.text("XPWD").await,
        "257 \"/a\"\"b\" is the current directory\r\n"
    );
    assert_eq!(h.code("CWD /nope").await, 550);
    assert_eq!(h.code("CWD /file.txt").await, 550);
    assert_eq!(h.code("CDUP").await, 200);
    assert_eq!(h.session.cwd().as_str(), "/");
    assert_eq!(
        h.code("CDUP").await,
        200,
        "CDUP at the root stays at the root"
    );
    assert_eq!(h.code("XCWD dir").await, 250);
    assert_eq!(h.code("XCUP").await, 200);
    assert_eq!(h.code("CWD").await, 501);
    assert_eq!(h.code("MKD /nope/deeper").await, 550);
    assert_eq!(h.code("RMD a\"b").await, 250);
    assert_eq!(h.code("RMD a\"b").await, 550);
    assert_eq!(h.code("RMD /file.txt").await, 550);
    assert_eq!(h.code("RMD /").await, 550);
    assert_eq!(h.code("XMKD x/").await, 257);
    assert_eq!(h.code("XRMD x").await, 250);
}

#[tokio::test]
async fn home_is_root_and_cannot_be_left() {
    let mut h = harness().await;
    h.login("bob").await;
    assert_eq!(h.code("CWD ../../..").await, 250);
    assert_eq!(h.session.cwd().as_str(), "/");
    assert_eq!(h.code("MKD sub").await, 257);
    assert!(h.services.storage.stat(&p("/home/bob/sub")).await.is_ok());
    assert_eq!(
        h.code("SIZE /file.txt").await,
        550,
        "outside the home is invisible"
    );
    assert_eq!(h.code("CWD /home").await, 550);
}

#[tokio::test]
async fn rename_sequences() {
    let mut h = harness().await;
    h.login("ann").await;
    assert_eq!(h.code("RNTO x").await, 503, "RNTO without RNFR");
    assert_eq!(h.code("RNFR missing").await, 550);
    assert_eq!(
        h.code("RNTO x").await,
        503,
        "a failed RNFR leaves nothing pending"
    );
    assert_eq!(h.code("RNFR file.txt").await, 350);
    assert_eq!(h.code("NOOP").await, 200);
    assert_eq!(h.code("RNTO x").await, 503, "RNTO must follow RNFR at once");
    assert_eq!(h.code("RNFR file.txt").await, 350);
    assert_eq!(h.code("RNTO dir/moved.txt").await, 250);
    assert_eq!(h.code("SIZE dir/moved.txt").await, 213);
    assert_eq!(h.code("SIZE file.txt").await, 550);
    assert_eq!(h.code("RNTO again").await, 503);
    assert_eq!(h.code("RNFR /").await, 550);
    assert_eq!(h.code("RNFR dir").await, 350);
    assert_eq!(h.code("RNTO /nope/dir").await, 550);
}

#[tokio::test]
async fn permissions_are_enforced() {
    let mut h = harness().await;
    h.login("ro").await;
    h.pasv().await;
    for line in [
        "STOR x",
        "APPE x",
        "STOU",
        "DELE file.txt",
        "MKD d",
        "RMD dir",
        "RNFR file.txt",
    ] {
        assert_eq!(h.code(line).await, 550, "{line}");
    }
    assert_eq!(h.code("RETR file.txt").await, 150);
}

#[tokio::test]
async fn type_mode_stru() {
    let mut h = harness().await;
    h.login("ann").await;
    assert_eq!(h.code("TYPE I").await, 200);
    assert_eq!(h.session.type_code, TypeCode::Image);
    assert_eq!(h.code("TYPE A").await, 200);
    assert_eq!(h.session.type_code, TypeCode::Ascii);
    assert_eq!(h.code("TYPE L 8").await, 200);
    assert_eq!(h.session.type_code, TypeCode::Image);
    assert_eq!(h.code("TYPE E").await, 504);
    assert_eq!(h.code("TYPE").await, 501);
    assert_eq!(h.code("MODE S").await, 200);
    assert_eq!(h.code("MODE B").await, 504);
    assert_eq!(h.code("STRU F").await, 200);
    assert_eq!(h.code("STRU R").await, 504);
    assert_eq!(h.code("ALLO 100").await, 202);
}

#[tokio::test]
async fn passive_replies() {
    let mut h = harness().await;
    h.login("ann").await;
    let out = h.run("PASV").await;
    assert!(out.replies.is_empty());
    assert!(matches!(out.action, Action::OpenPassive));
    let r = h.session.passive_opened(Ok(50001));
    assert_eq!(
        r.encode(),
        b"227 Entering Passive Mode (127,0,0,1,195,81)\r\n"
    );
    assert_eq!(h.session.data_setup(), DataSetup::Passive);
    assert!(matches!(h.run("EPSV").await.action, Action::OpenPassive));
    let r = h.session.passive_opened(Ok(50002));
    assert_eq!(
        r.encode(),
        b"229 Entering Extended Passive Mode (|||50002|)\r\n"
    );
    // No port free: 425 and no setup.
    assert!(matches!(h.run("EPSV 1").await.action, Action::OpenPassive));
    let r = h
        .session
        .passive_opened(Err(std::io::ErrorKind::AddrInUse.into()));
    assert_eq!(r.code, Code::CantOpenData);
    assert_eq!(h.session.data_setup(), DataSetup::None);
    assert_eq!(
        h.session.passive_opened(Ok(1)).code,
        Code::BadSequence,
        "nothing pending"
    );
    assert_eq!(h.code("EPSV 2").await, 522, "IPv6 on an IPv4 connection");
    assert_eq!(h.code("EPSV 3").await, 522);
    assert_eq!(h.code("EPSV ALL").await, 200);
    assert_eq!(h.code("PASV").await, 503);
    assert_eq!(h.code("PORT 127,0,0,1,4,1").await, 503);
    assert_eq!(h.code("EPRT |1|127.0.0.1|1025|").await, 503);
    assert!(matches!(h.run("EPSV").await.action, Action::OpenPassive));
}

#[tokio::test]
async fn passive_address_is_advertised() {
    let mut h = harness().await;
    h.session.settings.passive_address = Some("203.0.113.7".parse().unwrap());
    h.login("ann").await;
    h.run("PASV").await;
    let r = h.session.passive_opened(Ok(256));
    assert_eq!(r.text(), "Entering Passive Mode (203,0,113,7,1,0)");
}

#[tokio::test]
async fn active_mode_refuses_bounces() {
    let mut h = harness().await;
    h.login("ann").await;
    assert_eq!(
        h.code("PORT 10,0,0,1,4,1").await,
        504,
        "third-party address"
    );
    assert_eq!(h.code("EPRT |1|10.0.0.1|1025|").await, 504);
    assert_eq!(h.code("EPRT |2|::2|1025|").await, 504);
    assert_eq!(h.code("PORT 127,0,0,1,0,25").await, 504, "privileged port");
    assert_eq!(h.session.data_setup(), DataSetup::None);
    assert_eq!(h.code("PORT 127,0,0,1,4,1").await, 200);
    assert_eq!(
        h.session.data_setup(),
        DataSetup::Active("127.0.0.1:1025".parse().unwrap())
    );
    assert_eq!(h.code("EPRT |1|127.0.0.1|2000|").await, 200);
    assert_eq!(h.code("PORT 1,2,3").await, 501);
    assert_eq!(h.code("EPRT |9|x|1|").await, 522);

    let mut off = harness_with(false).await;
    off.login("ann").await;
    assert_eq!(off.code("PORT 127,0,0,1,4,1").await, 502);
    assert_eq!(off.code("EPRT |1|127.0.0.1|1025|").await, 502);
    assert!(!off.text("FEAT").await.contains("EPRT"));
}

#[tokio::test]
async fn retr_and_rest() {
    let mut h = harness().await;
    h.login("ann").await;
    assert_eq!(
        h.code("RETR file.txt").await,
        425,
        "no data connection set up"
    );
    h.pasv().await;
    assert_eq!(h.code("RETR missing").await, 550);
    assert_eq!(h.code("RETR dir").await, 550);
    assert_eq!(h.code("REST 3").await, 350);
    let out = h.run("RETR file.txt").await;
    assert_eq!(out.replies[0].code, Code::FileStatusOk);
    let Action::Transfer(t) = out.action else {
        panic!("{out:?}")
    };
    assert_eq!(t.setup, DataSetup::Passive);
    assert!(t.ascii, "TYPE A is the default");
    assert_eq!(t.path.as_str(), "/file.txt");
    let Direction::Send(Source::File(handle)) = t.direction else {
        panic!()
    };
    assert_eq!((handle.offset, handle.len), (3, 9));
    assert_eq!(
        h.session.data_setup(),
        DataSetup::None,
        "the setup is used up"
    );
    assert_eq!(h.code("RETR file.txt").await, 425);
    h.pasv().await;
    assert_eq!(h.code("REST 100").await, 350);
    assert_eq!(h.code("RETR file.txt").await, 554, "REST past the end");
    assert_eq!(h.code("REST x").await, 501);
    let out = h.run("RETR file.txt").await;
    let Action::Transfer(t) = out.action else {
        panic!("{out:?}")
    };
    let Direction::Send(Source::File(handle)) = t.direction else {
        panic!()
    };
    assert_eq!(
        handle.offset, 0,
        "REST is used up by the transfer it preceded"
    );
}

#[tokio::test]
async fn store_commands() {
    let mut h = harness().await;
    h.login("ann").await;
    assert_eq!(h.code("STOR new").await, 425);
    h.pasv().await;
    assert_eq!(h.code("STOR /nope/new").await, 553);
    assert_eq!(h.code("STOR dir").await, 550);
    assert_eq!(h.code("TYPE I").await, 200);
    let out = h.run("STOR new").await;
    assert_eq!(out.replies[0].code, Code::FileStatusOk);
    let Action::Transfer(t) = out.action else {
        panic!("{out:?}")
    };
    assert!(!t.ascii);
    assert!(matches!(
        t.direction,
        Direction::Receive {
            mode: WriteMode::Replace,
            precondition: Precondition::None,
            ..
        }
    ));
    h.pasv().await;
    assert_eq!(h.code("REST 5").await, 350);
    let Action::Transfer(t) = h.run("STOR file.txt").await.action else {
        panic!()
    };
    assert!(matches!(
        t.direction,
        Direction::Receive {
            mode: WriteMode::At(5),
            ..
        }
    ));
    h.pasv().await;
    assert_eq!(h.code("REST 500").await, 350);
    assert_eq!(h.code("STOR file.txt").await, 554);
    h.pasv().await;
    let Action::Transfer(t) = h.run("APPE file.txt").await.action else {
        panic!()
    };
    assert!(matches!(
        t.direction,
        Direction::Receive {
            mode: WriteMode::Append,
            ..
        }
    ));
    h.pasv().await;
    let out = h.run("STOU file.txt").await;
    assert_eq!(out.replies[0].text(), "FILE: file.txt.1");
    let Action::Transfer(t) = out.action else {
        panic!()
    };
    assert!(matches!(
        t.direction,
        Direction::Receive {
            precondition: Precondition::MustNotExist,
            ..
        }
    ));
    h.pasv().await;
    let out = h.run("STOU").await;
    assert!(out.replies[0].text().starts_with("FILE: stou."), "{out:?}");
    assert_eq!(h.code("DELE file.txt").await, 250);
    assert_eq!(h.code("DELE file.txt").await, 550);
    assert_eq!(h.code("DELE dir").await, 550);
}

#[tokio::test]
async fn listings() {
    let mut h = harness().await;
    h.login("ann").await;
    assert_eq!(h.code("LIST").await, 425);
    h.pasv().await;
    assert_eq!(h.code("LIST /missing").await, 450);
    let out = h.run("LIST -la").await;
    let Action::Transfer(t) = out.action else {
        panic!("{out:?}")
    };
    let Direction::Send(Source::Listing(body)) = t.direction else {
        panic!()
    };
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("drwxr-xr-x 1 ftp ftp"), "{text}");
    assert!(
        text.contains(" dir\r\n") && text.contains(" file.txt\r\n"),
        "{text}"
    );
    assert!(!t.ascii, "listings are sent as they are");
    h.pasv().await;
    let Action::Transfer(t) = h.run("NLST").await.action else {
        panic!()
    };
    let Direction::Send(Source::Listing(body)) = t.direction else {
        panic!()
    };
    assert_eq!(body, b"dir\r\nfile.txt\r\nhome\r\n");
    h.pasv().await;
    let Action::Transfer(t) = h.run("LIST file.txt").await.action else {
        panic!()
    };
    let Direction::Send(Source::Listing(body)) = t.direction else {
        panic!()
    };
    let line = String::from_utf8(body).unwrap();
    assert!(
        line.starts_with("-rw-r--r-- 1 ftp ftp ") && line.ends_with(" file.txt\r\n"),
        "{line}"
    );
    h.pasv().await;
    assert_eq!(h.code("MLSD file.txt").await, 501);
    assert_eq!(h.code("MLSD missing").await, 550);
    let Action::Transfer(t) = h.run("MLSD").await.action else {
        panic!()
    };
    let Direction::Send(Source::Listing(body)) = t.direction else {
        panic!()
    };
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("type=file;size=12;modify="), "{text}");
    assert!(text.contains(";perm=adfrw;unique="), "{text}");
    assert!(
        text.contains("type=dir;") && text.ends_with(" home\r\n"),
        "{text}"
    );
    let mlst = h.text("MLST file.txt").await;
    assert!(
        mlst.starts_with("250-Listing /file.txt\r\n type=file;size=12;"),
        "{mlst}"
    );
    assert!(mlst.ends_with("; /file.txt\r\n250 End\r\n"), "{mlst}");
    assert_eq!(h.code("MLST missing").await, 550);
    assert_eq!(h.code("OPTS MLST size;type").await, 200);
    let mlst = h.text("MLST").await;
    assert!(mlst.contains("\r\n type=dir;size=0; /\r\n"), "{mlst}");
    assert!(h
        .text("FEAT")
        .await
        .contains(" MLST type*;size*;modify;perm;unique;\r\n"));
    assert_eq!(h.code("OPTS BOGUS").await, 501);
}

#[tokio::test]
async fn size_mdtm_stat() {
    let mut h = harness().await;
    h.login("ann").await;
    assert_eq!(h.text("SIZE file.txt").await, "213 12\r\n");
    assert_eq!(h.code("SIZE dir").await, 550);
    assert_eq!(h.code("SIZE missing").await, 550);
    let mdtm = h.text("MDTM file.txt").await;
    assert!(
        mdtm.starts_with("213 20") && mdtm.len() == "213 YYYYMMDDHHMMSS\r\n".len(),
        "{mdtm}"
    );
    assert_eq!(h.code("MDTM missing").await, 550);
    let stat = h.text("STAT").await;
    assert!(
        stat.starts_with("211-")
            && stat.contains("Logged in as ann")
            && stat.ends_with("211 End of status\r\n"),
        "{stat}"
    );
    let stat = h.text("STAT dir").await;
    assert!(stat.starts_with("212-Status of /dir:\r\n"), "{stat}");
    let stat = h.text("STAT /file.txt").await;
    assert!(
        stat.starts_with("213-Status of /file.txt:\r\n -rw-r--r--"),
        "{stat}"
    );
    assert_eq!(h.code("STAT missing").await, 550);
}

#[tokio::test]
async fn info_commands() {
    let mut h = harness().await;
    h.login("ann").await;
    let feat = h.text("FEAT").await;
    for f in [
        " EPRT",
        " EPSV",
        " MDTM",
        " PASV",
        " REST STREAM",
        " SIZE",
        " UTF8",
        " TVFS",
    ] {
        assert!(feat.contains(&format!("{f}\r\n")), "{f} in {feat}");
    }
    assert!(feat.starts_with("211-") && feat.ends_with("211 End\r\n"));
    assert_eq!(h.text("SYST").await, "215 UNIX Type: L8\r\n");
    assert!(h.text("HELP").await.starts_with("214-"));
    assert!(h.text("SITE HELP").await.starts_with("214-"));
    assert_eq!(h.code("SITE CHMOD 777 x").await, 504);
    assert_eq!(h.code("OPTS UTF8 ON").await, 200);
    assert!(h.session.utf8);
    assert_eq!(h.code("ABOR").await, 225, "nothing to abort");
}

#[tokio::test]
async fn abor_closes_a_prepared_data_connection() {
    let mut h = harness().await;
    h.login("ann").await;
    h.pasv().await;
    assert_eq!(h.code("ABOR").await, 225);
    assert_eq!(h.session.data_setup(), DataSetup::None);
}

#[tokio::test]
async fn transfer_results_map_to_replies() {
    let mut h = harness().await;
    let codes = |r: Vec<Reply>| r.iter().map(|r| r.code.as_u16()).collect::<Vec<_>>();
    let io = || std::io::Error::other("x");
    assert_eq!(
        codes(
            h.session
                .transfer_done("RETR", &TransferResult::Sent { bytes: 1 })
        ),
        [226]
    );
    assert_eq!(
        codes(h.session.transfer_done("RETR", &TransferResult::Aborted)),
        [426, 226]
    );
    assert_eq!(
        codes(
            h.session
                .transfer_done("RETR", &TransferResult::NoConnection(io()))
        ),
        [425]
    );
    assert_eq!(
        codes(
            h.session
                .transfer_done("RETR", &TransferResult::Failed(io()))
        ),
        [426]
    );
    let stored = |result| TransferResult::Stored { result, bytes: 0 };
    assert_eq!(
        codes(
            h.session
                .transfer_done("STOR", &stored(Err(StoreError::Interrupted(io()))))
        ),
        [426]
    );
    assert_eq!(
        codes(
            h.session
                .transfer_done("STOR", &stored(Err(StoreError::StorageFull)))
        ),
        [452]
    );
    assert_eq!(
        codes(
            h.session
                .transfer_done("STOU", &stored(Err(StoreError::PreconditionFailed)))
        ),
        [450]
    );
}

#[tokio::test]
async fn bad_commands_are_counted_in_a_row() {
    let mut h = harness().await;
    for i in 1..=3 {
        h.code("BOGUS").await;
        assert_eq!(h.session.bad_commands(), i);
    }
    h.code("PWD").await;
    assert_eq!(h.session.bad_commands(), 4, "530 before login counts");
    h.code("NOOP").await;
    assert_eq!(h.session.bad_commands(), 0);
    let out = h
        .session
        .handle(Command::Error(ParseError::LineTooLong), SystemTime::now())
        .await;
    assert_eq!(out.replies[0].code, Code::SyntaxError);
    assert_eq!(h.session.bad_commands(), 1);
    assert!(
        h.run("").await.replies.is_empty(),
        "empty lines are ignored"
    );
}

#[tokio::test]
async fn account_changes_revoke_or_update() {
    let mut h = harness().await;
    h.login("ann").await;
    assert!(
        h.session.recheck_account().await.is_none(),
        "nothing changed"
    );
    let mut ann = h.services.accounts.user("ann").await.unwrap().unwrap();
    ann.permissions = Permissions::LIST | Permissions::READ;
    h.services.accounts.update_user(&ann).await.unwrap();
    assert!(h.session.recheck_account().await.is_none());
    assert_eq!(
        h.code("MKD new").await,
        550,
        "the new permissions apply at once"
    );
    ann.password_hash = password::hash("new").unwrap();
    h.services.accounts.update_user(&ann).await.unwrap();
    assert_eq!(
        h.session.recheck_account().await.map(|r| r.code),
        Some(Code::ServiceNotAvailable)
    );

    let mut h = harness().await;
    h.login("ro").await;
    let mut ro = h.services.accounts.user("ro").await.unwrap().unwrap();
    ro.disabled = true;
    h.services.accounts.update_user(&ro).await.unwrap();
    assert_eq!(
        h.session.recheck_account().await.map(|r| r.code),
        Some(Code::ServiceNotAvailable)
    );

    let mut h = harness().await;
    h.login("bob").await;
    h.services.accounts.delete_user("bob").await.unwrap();
    assert_eq!(
        h.session.recheck_account().await.map(|r| r.code),
        Some(Code::ServiceNotAvailable)
    );

    let mut h = harness().await;
    assert!(
        h.session.recheck_account().await.is_none(),
        "not logged in: nothing to revoke"
    );
}

#[tokio::test]
async fn user_again_starts_a_new_login() {
    let mut h = harness().await;
    h.login("ann").await;
    assert_eq!(h.code("CWD dir").await, 250);
    assert_eq!(h.code("USER ro").await, 331);
    assert_eq!(h.session.user(), None);
    assert_eq!(h.code("PWD").await, 530);
    assert_eq!(h.code("PASS pw").await, 230);
    assert_eq!(h.session.cwd().as_str(), "/");
}

#[tokio::test]
async fn bad_paths_are_553() {
    let mut h = harness().await;
    h.login("ann").await;
    let long = "x".repeat(300);
    assert_eq!(h.code(&format!("MKD {long}")).await, 553);
    assert_eq!(h.code("RETR a\u{7f}b").await, 553);
}
