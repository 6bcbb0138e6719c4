//! `shop-user`: the user service's binary. Everything is in the library;
//! `shop_common::service::main` reads `-c FILE` and the environment and
//! serves until Ctrl-C or SIGTERM.
//!
//! `shop-user hash-password` instead reads a password from standard input
//! (its first line) and prints its argon2id PHC string, for an
//! `operators_file` line `login=<that string>`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

fn hash_password() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        eprintln!("shop-user hash-password: cannot read standard input: {e}");
        return ExitCode::from(2);
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    match shop_user::operators::hash_password(password) {
        Ok(phc) => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{phc}").is_err() {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shop-user hash-password: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> anyhow::Result<ExitCode> {
    if std::env::args().nth(1).as_deref() == Some("hash-password") {
        return Ok(hash_password());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(shop_common::service::main(&shop_user::SERVICE))?;
    Ok(ExitCode::SUCCESS)
}
