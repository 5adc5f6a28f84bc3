//! All integration tests build into this one binary and drive the real `provision` binary.

mod app;
mod cli;
mod component;
mod cut;
mod e2e;
mod errors;
mod faults;
mod lab;
mod load;
mod render;
mod ssh;
mod util;
mod vagrant;
mod wordpress;
