//! Unit tests of every store operation against a temporary store.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::*;
use crate::accounts::{Accounts, Permissions, User};
use crate::{body_from_bytes, read_to_vec};

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir, &SledOptions::default()).unwrap().0
}

async fn put(s: &SledStore, path: &str, data: &[u8]) -> WriteOutcome {
    s.write(
        &p(path),
        WriteMode::Replace,
        Precondition::None,
        body_from_bytes(data.to_vec()),
    )
    .await
    .unwrap()
}

async fn get(s: &SledStore, path: &str) -> Vec<u8> {
    read_to_vec(s.read(&p(path), 0, None).await.unwrap().body)
        .await
        .unwrap()
}

fn blob_files(dir: &Path) -> usize {
    walk(&dir.join("blobs"))
}

fn walk(d: &Path) -> usize {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn write_read_stat_replace() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let first = put(&s, "/a.txt", b"hello").await;
    assert!(first.created);
    assert_eq!(first.entry.size, 5);
    assert_eq!(first.entry.digest, Some(*blake3::hash(b"hello").as_bytes()));
    assert_eq!(get(&s, "/a.txt").await, b"hello");
    let st = s.stat(&p("/a.txt")).await.unwrap();
    assert_eq!(st, first.entry);
    let second = put(&s, "/a.txt", b"world").await;
    assert!(!second.created);
    assert_ne!(
        second.entry.tag, first.entry.tag,
        "same size, same second, new tag"
    );
    assert_eq!(get(&s, "/a.txt").await, b"world");
    assert_eq!(blob_files(dir.path()), 1, "the replaced blob is gone");
    let u = s.usage().await.unwrap();
    assert_eq!((u.files, u.bytes), (1, 5));
}

#[tokio::test]
async fn empty_and_ranged_reads() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    put(&s, "/empty", b"").await;
    assert_eq!(get(&s, "/empty").await, b"");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    put(&s, "/big", &data).await;
    let h = s.read(&p("/big"), 70_000, Some(100_000)).await.unwrap();
    assert_eq!((h.offset, h.len), (70_000, 100_000));
    assert_eq!(read_to_vec(h.body).await.unwrap(), &data[70_000..170_000]);
    let h = s.read(&p("/big"), 150_000, Some(1 << 40)).await.unwrap();
    assert_eq!(h.len, 50_000, "length clamped to the end");
    assert_eq!(read_to_vec(h.body).await.unwrap(), &data[150_000..]);
    let h = s.read(&p("/big"), 200_000, None).await.unwrap();
    assert_eq!(h.len, 0);
    assert!(matches!(
        s.read(&p("/big"), 200_001, None).await,
        Err(StoreError::OffsetPastEnd { .. })
    ));
    assert!(matches!(
        s.read(&p("/nope"), 0, None).await,
        Err(StoreError::NotFound)
    ));
    s.mkdir(&p("/d")).await.unwrap();
    assert!(matches!(
        s.read(&p("/d"), 0, None).await,
        Err(StoreError::IsADirectory)
    ));
    assert!(matches!(
        s.read(&p("/"), 0, None).await,
        Err(StoreError::IsADirectory)
    ));
}

#[tokio::test]
async fn append_and_write_at_offset() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let w = s
        .write(
            &p("/log"),
            WriteMode::Append,
            Precondition::None,
            body_from_bytes("abc"),
        )
        .await
        .unwrap();
    assert!(w.created);
    let w = s
        .write(
            &p("/log"),
            WriteMode::Append,
            Precondition::None,
            body_from_bytes("def"),
        )
        .await
        .unwrap();
    assert_eq!(get(&s, "/log").await, b"abcdef");
    assert_eq!(w.entry.digest, Some(*blake3::hash(b"abcdef").as_bytes()));
    let w = s
        .write(
            &p("/log"),
            WriteMode::At(2),
            Precondition::None,
            body_from_bytes("XY"),
        )
        .await
        .unwrap();
    assert_eq!(get(&s, "/log").await, b"abXY");
    assert_eq!(w.entry.digest, Some(*blake3::hash(b"abXY").as_bytes()));
    assert!(matches!(
        s.write(
            &p("/log"),
            WriteMode::At(5),
            Precondition::None,
            body_from_bytes("z")
        )
        .await,
        Err(StoreError::OffsetPastEnd { offset: 5, size: 4 })
    ));
    s.write(
        &p("/new"),
        WriteMode::At(0),
        Precondition::None,
        body_from_bytes("n"),
    )
    .await
    .unwrap();
    assert_eq!(get(&s, "/new").await, b"n");
    assert_eq!(blob_files(dir.path()), 2);
}

#[tokio::test]
async fn preconditions() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let v1 = put(&s, "/f", b"1").await.entry.tag;
    let f = p("/f");
    let create_only = s
        .write(
            &f,
            WriteMode::Replace,
            Precondition::MustNotExist,
            body_from_bytes("x"),
        )
        .await;
    assert!(matches!(create_only, Err(StoreError::PreconditionFailed)));
    let stale = s
        .write(
            &p("/f"),
            WriteMode::Replace,
            Precondition::MustMatch("nope".into()),
            body_from_bytes("2"),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::PreconditionFailed)));
    assert_eq!(get(&s, "/f").await, b"1", "untouched");
    s.write(
        &p("/f"),
        WriteMode::Replace,
        Precondition::MustMatch(v1.clone()),
        body_from_bytes("2"),
    )
    .await
    .unwrap();
    let again = s
        .write(
            &p("/f"),
            WriteMode::Replace,
            Precondition::MustMatch(v1),
            body_from_bytes("3"),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::PreconditionFailed)),
        "lost update refused"
    );
    let missing = s
        .write(
            &p("/g"),
            WriteMode::Replace,
            Precondition::MustExist,
            body_from_bytes("3"),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::PreconditionFailed)));
    assert_eq!(blob_files(dir.path()), 1, "refused writes leave no blob");
}

#[tokio::test]
async fn precondition_is_checked_at_publish_time() {
    // Two uploads race with create-only: exactly one wins, whatever the interleaving.
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(dir.path()));
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    let slow = {
        let s = Arc::clone(&s);
        tokio::spawn(async move {
            let body = tokio_stream_from(rx);
            s.write(
                &p("/race"),
                WriteMode::Replace,
                Precondition::MustNotExist,
                body,
            )
            .await
        })
    };
    tokio::task::yield_now().await;
    s.write(
        &p("/race"),
        WriteMode::Replace,
        Precondition::MustNotExist,
        body_from_bytes("fast"),
    )
    .await
    .unwrap();
    tx.send(Ok(Bytes::from_static(b"slow"))).await.unwrap();
    drop(tx);
    assert!(matches!(
        slow.await.unwrap(),
        Err(StoreError::PreconditionFailed)
    ));
    assert_eq!(get(&s, "/race").await, b"fast");
    assert_eq!(blob_files(dir.path()), 1);
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> crate::BodyStream {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

#[tokio::test]
async fn interrupted_upload_keeps_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    put(&s, "/f", b"old").await;
    let body: crate::BodyStream = Box::pin(futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial new")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client gone",
        )),
    ]));
    let r = s
        .write(&p("/f"), WriteMode::Replace, Precondition::None, body)
        .await;
    assert!(matches!(r, Err(StoreError::Interrupted(_))));
    assert_eq!(get(&s, "/f").await, b"old");
    assert_eq!(blob_files(dir.path()), 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );

    // A dropped upload future (the connection task was cancelled) also leaves nothing.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    let f = p("/f");
    let fut = s.write(
        &f,
        WriteMode::Replace,
        Precondition::None,
        tokio_stream_from(rx),
    );
    tx.send(Ok(Bytes::from_static(b"abc"))).await.unwrap();
    let _ = tokio::time::timeout(std::time::Duration::from_millis(50), fut).await;
    drop(tx);
    // The writer thread notices the closed channel and deletes its temporary file.
    for _ in 0..100 {
        if std::fs::read_dir(dir.path().join("tmp")).unwrap().count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    assert_eq!(get(&s, "/f").await, b"old");
}

#[tokio::test]
async fn download_keeps_its_version_through_overwrite_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let v1: Vec<u8> = vec![1; 1 << 20];
    put(&s, "/f", &v1).await;
    let mut h = s.read(&p("/f"), 0, None).await.unwrap();
    let first = h.body.next().await.unwrap().unwrap();
    put(&s, "/f", &vec![2; 1 << 20]).await;
    let mut rest = first.to_vec();
    rest.extend(read_to_vec(h.body).await.unwrap());
    assert_eq!(rest, v1, "the old version, never a mix");

    let h = s.read(&p("/f"), 0, None).await.unwrap();
    s.delete(&p("/f")).await.unwrap();
    assert_eq!(read_to_vec(h.body).await.unwrap(), vec![2; 1 << 20]);
    assert_eq!(blob_files(dir.path()), 0);
}

#[tokio::test]
async fn directories() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.mkdir(&p("/d")).await.unwrap();
    assert!(matches!(
        s.mkdir(&p("/d")).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        s.mkdir(&p("/x/y")).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.mkdir(&p("/")).await,
        Err(StoreError::AlreadyExists)
    ));
    put(&s, "/d/b", b"b").await;
    put(&s, "/d/a", b"a").await;
    s.mkdir(&p("/d/sub")).await.unwrap();
    let names: Vec<String> = s
        .list(&p("/d"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["a", "b", "sub"]);
    let root = s.list(&p("/")).await.unwrap();
    assert_eq!(root.len(), 1);
    assert!(root[0].is_dir());
    assert!(s.stat(&p("/")).await.unwrap().is_dir());
    assert!(matches!(
        s.list(&p("/d/a")).await,
        Err(StoreError::NotADirectory)
    ));
    assert!(matches!(
        s.list(&p("/nope")).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(s.rmdir(&p("/d")).await, Err(StoreError::NotEmpty)));
    assert!(matches!(
        s.rmdir(&p("/d/a")).await,
        Err(StoreError::NotADirectory)
    ));
    assert!(matches!(
        s.rmdir(&p("/")).await,
        Err(StoreError::NotPermitted)
    ));
    assert!(matches!(
        s.delete(&p("/d/sub")).await,
        Err(StoreError::IsADirectory)
    ));
    // A file under a file.
    assert!(matches!(
        s.write(
            &p("/d/a/x"),
            WriteMode::Replace,
            Precondition::None,
            body_from_bytes("x")
        )
        .await,
        Err(StoreError::NotADirectory)
    ));
    // A write over a directory.
    assert!(matches!(
        s.write(
            &p("/d/sub"),
            WriteMode::Replace,
            Precondition::None,
            body_from_bytes("x")
        )
        .await,
        Err(StoreError::IsADirectory)
    ));
    s.delete(&p("/d/a")).await.unwrap();
    s.delete(&p("/d/b")).await.unwrap();
    assert!(matches!(
        s.delete(&p("/d/b")).await,
        Err(StoreError::NotFound)
    ));
    s.rmdir(&p("/d/sub")).await.unwrap();
    s.rmdir(&p("/d")).await.unwrap();
    assert!(s.list(&p("/")).await.unwrap().is_empty());
    assert_eq!(s.usage().await.unwrap(), Usage::default());
}

#[tokio::test]
async fn renames() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.mkdir(&p("/a")).await.unwrap();
    s.mkdir(&p("/a/deep")).await.unwrap();
    put(&s, "/a/deep/f", b"f").await;
    put(&s, "/g", b"g").await;
    // A whole directory moves in one step, children included.
    s.mkdir(&p("/b")).await.unwrap();
    s.rename(&p("/a/deep"), &p("/b/moved"), false)
        .await
        .unwrap();
    assert_eq!(get(&s, "/b/moved/f").await, b"f");
    assert!(matches!(
        s.stat(&p("/a/deep")).await,
        Err(StoreError::NotFound)
    ));
    // The counts followed: /a is empty now, /b is not.
    s.rmdir(&p("/a")).await.unwrap();
    assert!(matches!(s.rmdir(&p("/b")).await, Err(StoreError::NotEmpty)));
    // Into itself: refused.
    assert!(matches!(
        s.rename(&p("/b"), &p("/b/moved/x"), false).await,
        Err(StoreError::Conflict)
    ));
    // Overwrite rules.
    put(&s, "/h", b"h").await;
    assert!(matches!(
        s.rename(&p("/g"), &p("/h"), false).await,
        Err(StoreError::AlreadyExists)
    ));
    s.rename(&p("/g"), &p("/h"), true).await.unwrap();
    assert_eq!(get(&s, "/h").await, b"g");
    assert_eq!(
        blob_files(dir.path()),
        2,
        "the replaced file's blob is gone"
    );
    assert!(matches!(
        s.rename(&p("/h"), &p("/b"), true).await,
        Err(StoreError::IsADirectory)
    ));
    assert!(matches!(
        s.rename(&p("/b"), &p("/h"), true).await,
        Err(StoreError::NotADirectory)
    ));
    s.mkdir(&p("/empty")).await.unwrap();
    assert!(matches!(
        s.rename(&p("/empty"), &p("/b"), true).await,
        Err(StoreError::NotEmpty)
    ));
    s.mkdir(&p("/empty2")).await.unwrap();
    s.rename(&p("/empty"), &p("/empty2"), true).await.unwrap();
    // Same name: a no-op. Missing source or target parent: NotFound. The root: refused.
    s.rename(&p("/h"), &p("/h"), false).await.unwrap();
    assert!(matches!(
        s.rename(&p("/zz"), &p("/y"), false).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.rename(&p("/h"), &p("/no/y"), false).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.rename(&p("/"), &p("/y"), false).await,
        Err(StoreError::NotPermitted)
    ));
    // Rename within one directory keeps its count right.
    s.rename(&p("/b/moved/f"), &p("/b/moved/f2"), false)
        .await
        .unwrap();
    s.delete(&p("/b/moved/f2")).await.unwrap();
    s.rmdir(&p("/b/moved")).await.unwrap();
    s.rmdir(&p("/b")).await.unwrap();
    let u = s.usage().await.unwrap();
    assert_eq!((u.files, u.dirs, u.bytes), (1, 1, 1));
}

#[tokio::test]
async fn reopen_keeps_everything_and_sweeps_orphans() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        s.mkdir(&p("/d")).await.unwrap();
        put(&s, "/d/f", b"kept").await;
    }
    // What a crash leaves: a temporary file and a blob nothing refers to.
    std::fs::write(dir.path().join("tmp/up-crashed"), b"partial").unwrap();
    std::fs::create_dir_all(dir.path().join("blobs/ff")).unwrap();
    std::fs::write(dir.path().join("blobs/ff/00000000000000ff"), b"orphan").unwrap();
    let (s, report) = SledStore::open(dir.path(), &SledOptions::default()).unwrap();
    assert_eq!(report.temp_files_removed, 1);
    assert_eq!(report.orphan_blobs_removed, 1);
    assert_eq!(get(&s, "/d/f").await, b"kept");
    let u = s.usage().await.unwrap();
    assert_eq!((u.files, u.dirs, u.bytes), (1, 1, 4));
    assert_eq!(blob_files(dir.path()), 1);
}

#[tokio::test]
async fn second_open_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _s = open(dir.path());
    match SledStore::open(dir.path(), &SledOptions::default()) {
        Err(StoreError::InUse(msg)) => assert!(msg.contains(&dir.path().display().to_string())),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened twice"),
    }
}

#[tokio::test]
async fn accounts() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut events = s.subscribe();
    let mut u = User {
        name: "ann".into(),
        password_hash: "x".into(),
        home: "/ann".into(),
        permissions: Permissions::READ,
        disabled: false,
        token_generation: 0,
    };
    s.create_user(&u).await.unwrap();
    assert!(matches!(
        s.create_user(&u).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(s.user("ann").await.unwrap(), Some(u.clone()));
    u.disabled = true;
    s.update_user(&u).await.unwrap();
    assert!(s.user("ann").await.unwrap().unwrap().disabled);
    assert_eq!(s.bump_token_generation("ann").await.unwrap(), 1);
    assert_eq!(s.bump_token_generation("ann").await.unwrap(), 2);
    assert!(matches!(
        s.bump_token_generation("bob").await,
        Err(StoreError::NotFound)
    ));
    let mut bob = u.clone();
    bob.name = "bob".into();
    assert!(matches!(
        s.update_user(&bob).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.users().await.unwrap().len(), 1);
    s.delete_user("ann").await.unwrap();
    assert!(matches!(
        s.delete_user("ann").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.user("ann").await.unwrap(), None);
    let mut seen = 0;
    while let Ok(AccountEvent::Changed { name }) = events.try_recv() {
        assert_eq!(name, "ann");
        seen += 1;
    }
    assert_eq!(seen, 5, "create, update, two bumps, delete");
    let k1 = s.secret("token-key", 32).await.unwrap();
    assert_eq!(k1.len(), 32);
    assert_eq!(s.secret("token-key", 32).await.unwrap(), k1);
}

#[tokio::test]
async fn version_tags_differ_across_stores() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let sa = open(a.path());
    let sb = open(b.path());
    let ta = put(&sa, "/f", b"x").await.entry.tag;
    let tb = put(&sb, "/f", b"x").await.entry.tag;
    assert_ne!(ta, tb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_uploads_complete() {
    // sled 0.34.7's flush_async deadlocked with 7+ concurrent callers; the store must not.
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(dir.path()));
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                for i in 0..20 {
                    let path = p(&format!("/t{t}-{}", i % 3));
                    s.write(
                        &path,
                        WriteMode::Replace,
                        Precondition::None,
                        body_from_bytes(vec![t as u8; 4096]),
                    )
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    let all = futures::future::join_all(tasks);
    let done = tokio::time::timeout(std::time::Duration::from_secs(120), all).await;
    assert!(done.is_ok(), "uploads hung");
    assert_eq!(s.usage().await.unwrap().files, 96);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_beyond_the_direct_write_budget_are_stored_whole() {
    // Buffers for one direct upload: the other two go through the page cache meanwhile.
    let dir = tempfile::tempdir().unwrap();
    let options = SledOptions {
        direct_write_bytes: 4 << 20,
        ..SledOptions::default()
    };
    let (s, _) = SledStore::open(dir.path(), &options).unwrap();
    let s = Arc::new(s);
    let body = |t: usize| -> Vec<u8> {
        (0..(20 << 20) + t * 4097)
            .map(|i| (i.wrapping_mul(31).wrapping_add(t * 7) >> 3) as u8)
            .collect()
    };
    let tasks: Vec<_> = (0..3)
        .map(|t| {
            let s = Arc::clone(&s);
            let data = body(t);
            tokio::spawn(async move {
                // In pieces, so the uploads overlap instead of each finishing in one go.
                let chunks: Vec<std::io::Result<Bytes>> = data
                    .chunks(256 << 10)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect();
                let stream = futures::stream::iter(chunks).then(|c| async move {
                    tokio::task::yield_now().await;
                    c
                });
                s.write(
                    &p(&format!("/big{t}")),
                    WriteMode::Replace,
                    Precondition::None,
                    Box::pin(stream),
                )
                .await
                .unwrap();
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    for t in 0..3 {
        assert!(get(&s, &format!("/big{t}")).await == body(t), "/big{t}");
    }
}
