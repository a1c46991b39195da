//! Compile tests of `#[derive(CustomResource)]`: every file in `ui/pass` compiles and runs, and
//! every file in `ui/fail` fails with the checked-in `.stderr`, one mistake per file.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p windlass-macros --test ui`,
//! then read each one: it is what a user sees.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
