//! All integration tests build into this one binary and drive the real `provision` binary.

mod errors;
mod render;
mod util;
