//! Integration tests of the auth core: the real `tether` binary and the library
//! against a `wiremock` authorization server on loopback.

mod support;

mod config_file;
mod credential_headers;
mod discovery;
mod login;
mod logout;
mod refresh;
mod refresh_concurrency;
mod relay_token;
mod status_output;
