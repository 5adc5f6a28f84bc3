//! All integration tests build into this one binary and drive the real `provision` binary.

mod accounts;
mod acme;
mod app;
mod cli;
mod component;
mod cut;
mod e2e;
mod errors;
mod faults;
mod guard;
mod lab;
mod load;
mod render;
mod sites;
mod ssh;
mod trust;
mod undo;
mod util;
mod vagrant;
mod wordpress;
