//! The HTTP gateway with real clients (curl, a client crate, headless Chromium).
