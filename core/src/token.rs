//! Bearer tokens (placeholder: the httpd issue fills this in).
