//! The session's command handlers, one file per command group. Each file opens with the RFC's
//! own definition of its verbs.
//!
//! - [`login`]: USER PASS ACCT REIN HOST (QUIT is answered in the dispatcher).
//! - [`navigate`]: PWD CWD CDUP.
//! - [`files`]: MKD RMD DELE RNFR RNTO SIZE MDTM.
//! - [`datachan`]: PASV EPSV PORT EPRT.
//! - [`transfer`]: RETR STOR STOU APPE REST ABOR TYPE.
//! - [`list`]: LIST NLST MLSD MLST STAT.
//! - [`info`]: FEAT OPTS HELP SITE.

pub mod datachan;
pub mod files;
pub mod info;
pub mod list;
pub mod login;
pub mod navigate;
pub mod transfer;
