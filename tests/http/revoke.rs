//! Revoking one's own tokens on a running server: `POST /_/revoke`.

use crate::common::{curl, curl_status as code, require_tool, TestServer, ADMIN_PASSWORD};

#[test]
fn post_revoke_stops_every_token_of_the_caller() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start();
    let user = format!("admin:{ADMIN_PASSWORD}");
    let (ok, out, err) = curl(&[
        "-f",
        "-u",
        &user,
        "-X",
        "POST",
        &server.http_url("/_/token?ttl=1h"),
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    let bearer = format!("Authorization: Bearer {token}");
    assert_eq!(code(&["-H", &bearer, &server.http_url("/")]), 200);

    assert_eq!(
        code(&["-X", "POST", &server.http_url("/_/revoke")]),
        401,
        "needs credentials"
    );
    assert_eq!(
        code(&["-X", "GET", "-u", &user, &server.http_url("/_/revoke")]),
        405
    );
    let (ok, out, err) = curl(&[
        "-f",
        "-u",
        &user,
        "-X",
        "POST",
        &server.http_url("/_/revoke"),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("\"token_generation\": 1"), "{out}");
    assert_eq!(
        code(&["-H", &bearer, &server.http_url("/")]),
        401,
        "the old token is refused"
    );
    assert_eq!(
        code(&["-u", &user, &server.http_url("/")]),
        200,
        "Basic still works"
    );
}
