"""Selection: the Rust-backed selector, its pure-Python reference, and the strategies."""
