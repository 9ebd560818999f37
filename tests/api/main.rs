//! Integration tests: the real app on a real socket, spoken to over HTTP.

// A panic is how a test reports: unwrap freely. (clippy.toml's allow-unwrap-in-tests
// does not reach the helpers these tests share, nor every async test.) Std locks too:
// a poisoned lock in a test is already a failure.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod helpers;

mod account;
mod accounts;
mod auth;
mod bad_input;
mod batch;
mod caching;
mod chat_rooms;
mod classic;
mod cli;
mod clients;
mod credentials;
mod edge;
mod error_codes;
mod errors;
mod fuzz_findings;
mod history;
mod openapi;
mod ops;
mod realtime;
mod scale;
mod scale_out;
mod search;
mod shared_presence;
mod socketio;
mod users;
mod web;
