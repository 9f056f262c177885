//! Wall time of `veyra --version`: process start, argument parsing, exit.
//! Run: `cargo bench --bench startup`.

use std::process::{Command, Stdio};

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 200)]
fn version_wall_time() -> std::process::ExitStatus {
    Command::new(env!("CARGO_BIN_EXE_veyra"))
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .expect("the veyra binary starts")
}
