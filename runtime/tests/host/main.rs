//! Integration tests of the real `tether-host` and `tether-ptyd` on loopback, against
//! a small in-test relay and a wiremock API.

mod support;

mod cli_host;
mod completions;
mod install;
mod limits;
mod relay;
mod self_update;
mod supervisor;
