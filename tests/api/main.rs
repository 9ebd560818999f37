//! Integration tests: the real app on a real socket, spoken to over HTTP.

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
mod errors;
mod fuzz_findings;
mod history;
mod openapi;
mod ops;
mod realtime;
mod scale;
mod scale_out;
mod shared_presence;
mod socketio;
mod users;
mod web;
