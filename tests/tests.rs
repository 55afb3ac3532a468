//! Every integration test, as modules of one test binary (ripgrep's
//! `tests/tests.rs`): the shared helpers in `common` compile and link once,
//! instead of once per file. Run one file's tests with
//! `cargo test --test tests proof::`, one test with its full path.

mod common;

mod api;
mod cli;
mod content;
mod dashboards;
mod data_path;
mod doctor;
mod events;
mod faults;
mod grep;
mod net_errors;
mod notify;
mod object_lock;
mod operator;
mod progress;
mod proof;
mod push;
mod review2;
mod safety;
mod safety_edges;
mod scripts;
mod secrets;
mod tls;
mod ui;
mod upload_s3;
