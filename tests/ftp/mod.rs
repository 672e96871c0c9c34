//! The FTP front end with real clients (lftp, curl, Python ftplib).
