//! The store through a real process.
