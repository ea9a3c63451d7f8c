//! Guides for users coming from other crates.

#[doc = include_str!("../docs/migrating-from-tokio.md")]
pub mod from_tokio {}
