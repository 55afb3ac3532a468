//! Pushed files: upload tokens ([`token`]), the names a push may use
//! ([`name`]), the request headers of the protocol ([`wire`]), where
//! bodies wait ([`spool`]) and the client of `fgbackup push` ([`client`]).
//! The server's side of the HTTP exchange is `api::upload`; archiving a
//! received body is `ops::push`, through the upload pipeline's steps.

pub mod client;
pub mod name;
pub mod spool;
pub mod token;
pub mod wire;
