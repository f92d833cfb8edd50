//! End-to-end tests of the `oubli` binary, one test binary: its commands,
//! exit statuses and `--json` (`cli`), requests carried by worker processes
//! killed at the worst moments (`requests`), and `oubli serve` over real
//! HTTP and TLS (`api`). `site` is the harness they share: a directory with
//! a config, a keyring and the people-directory stand-in.

mod api;
mod audit;
mod cli;
mod console;
mod kit;
mod privacy;
mod requests;
mod retention;
mod site;
