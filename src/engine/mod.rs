//! The S3 data path, below the store: SigV4 signing with the payload hash
//! the digest step already took ([`sigv4`]), one pooled keep-alive HTTP(S)
//! client whose bodies stream from the file ([`client`]), the shared
//! `--bwlimit` budget ([`throttle`]), and failures that keep their HTTP
//! status and S3 error code ([`error`]) until the store decides what they
//! mean, and what to tell the user about them ([`advice`]). rust-s3 stays
//! for what it does well: its signing helpers, region names, and presigned
//! URLs.

pub mod advice;
pub mod client;
pub mod error;
pub mod sigv4;
pub mod throttle;
pub mod xml;
