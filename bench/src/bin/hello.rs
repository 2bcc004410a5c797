//! std-only hello world: the size/build-time floor for `build_size.sh`.
fn main() {
    println!("hello, world");
}
