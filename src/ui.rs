//! The only module that prints. Everything the user reads goes through here.

pub fn line(s: &str) {
    println!("{s}");
}
