// Migrations are embedded by a macro that cargo cannot see into: rebuild
// when one is added or changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
