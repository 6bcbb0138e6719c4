//! `shop-user hash-password`: what an operator runs to make a line of the
//! operators file.

use std::io::Write;
use std::process::{Command, Stdio};

use shop_user::password::StoredHash;

fn run(stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shop-user"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_password_on_stdin_becomes_an_argon2id_phc_string() {
    for input in [
        "operator-password\n",
        "operator-password\r\n",
        "operator-password",
    ] {
        let (code, stdout, stderr) = run(input);
        assert_eq!(code, 0, "{stderr}");
        let phc = stdout.strip_suffix('\n').expect("one line");
        assert!(
            !phc.contains('\n') && stderr.is_empty(),
            "{stdout:?} {stderr:?}"
        );
        let stored = StoredHash::parse(phc).expect("an argon2id PHC string");
        assert!(stored.verify("operator-password"), "{input:?}");
        assert!(!stored.verify("operator-password\n"));
    }
}

#[test]
fn a_password_out_of_bounds_is_refused_on_stderr() {
    let (code, stdout, stderr) = run("short\n");
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("8 to 128 characters"), "{stderr}");
}
