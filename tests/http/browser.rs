//! A real browser: headless Chromium (Debian's `chromium` and `chromium-driver`) driven through
//! WebDriver with fantoccini opens the HTML listing, follows a link into a directory, uploads a
//! file through the form, and the file is then in the store with the right bytes.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use http::StatusCode;
use hyper_util::client::legacy::connect::HttpConnector;

use super::{pattern, rt, send, send_admin};
use crate::common::{free_port, require_tool, TestServer};

/// chromedriver, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver() -> (Driver, u16) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    (driver, port)
}

#[test]
fn chromium_lists_follows_and_uploads() {
    if !require_tool("chromium") || !require_tool("chromedriver") {
        return;
    }
    let server = TestServer::start();
    let a = server.http;
    let (_driver, port) = start_driver();
    let profile = tempfile::tempdir().unwrap();
    let upload_dir = tempfile::tempdir().unwrap();
    let upload = upload_dir.path().join("from-browser.bin");
    let data = pattern(300_000, 5);
    std::fs::write(&upload, &data).unwrap();

    rt().block_on(async {
        assert_eq!(
            send_admin(a, "MKCOL", "/docs", &[], "").await.status,
            StatusCode::CREATED
        );
        send_admin(a, "PUT", "/docs/readme.txt", &[], "read me").await;
        // The browser uses a writable share link: links and the form carry the token.
        let r = send_admin(a, "POST", "/_/token?ttl=10m", &[], "").await;
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let token = v["token"].as_str().unwrap().to_owned();

        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        let result = async {
            client.goto(&format!("http://{a}/?token={token}")).await?;
            let title = client.title().await?;
            assert_eq!(title, "Index of /");
            // Follow the link into the directory.
            client
                .find(Locator::LinkText("docs/"))
                .await?
                .click()
                .await?;
            client
                .wait()
                .for_element(Locator::LinkText("readme.txt"))
                .await?;
            let url = client.current_url().await?;
            assert_eq!(url.path(), "/docs/");
            // Upload through the form.
            let input = client.find(Locator::Id("file")).await?;
            input.send_keys(&upload.display().to_string()).await?;
            client
                .find(Locator::Id("upload-button"))
                .await?
                .click()
                .await?;
            client
                .wait()
                .at_most(Duration::from_secs(30))
                .for_element(Locator::LinkText("from-browser.bin"))
                .await?;
            assert_eq!(client.current_url().await?.path(), "/docs/");
            // Sorting by size puts the bigger file last, then first.
            client
                .find(Locator::Css("button[data-sort=size]"))
                .await?
                .click()
                .await?;
            let first = client
                .find(Locator::Css("#listing tbody tr[data-name]"))
                .await?;
            assert_eq!(
                first.attr("data-name").await?.as_deref(),
                Some("readme.txt")
            );
            Ok::<_, fantoccini::error::CmdError>(())
        }
        .await;
        let _ = client.close().await;
        result.unwrap();

        let r = send_admin(a, "GET", "/docs/from-browser.bin", &[], "").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.body[..] == data[..],
            "the uploaded bytes are in the store"
        );
        let r = send(a, "GET", "/docs/from-browser.bin", &[], "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    });
}
