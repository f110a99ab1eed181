//! `allerta console passwd NAME`: a console user's argon2id hash for
//! `[console.users]` (SPEC §17). The password is read from standard input
//! (one line; without echo on a terminal) and never printed.

use std::io::{BufRead, IsTerminal, Write};

use clap::Subcommand;

use crate::error::Error;
use crate::serve::console::{config::is_os_user_name, password};

#[derive(Subcommand, Debug)]
pub enum ConsoleCommand {
    /// Read a password from standard input and print `NAME = "<argon2id hash>"`
    /// for [console.users]
    Passwd {
        /// The console user: an OS user name (the identity of the
        /// two-person rule)
        name: String,
    },
}

pub fn run(command: &ConsoleCommand, json: bool) -> Result<(), Error> {
    let ConsoleCommand::Passwd { name } = command;
    if !is_os_user_name(name) {
        return Err(Error::Input(format!(
            "`{name}` is not an OS user name: console users are the office's OS users (lower-case letters, digits, `_`, `-`, `.`)"
        )));
    }
    let password = read_password()?;
    if password.trim().is_empty() {
        return Err(Error::Input("empty password: nothing to hash".into()));
    }
    let hash = password::hash(&password).map_err(Error::Runtime)?;
    if json {
        super::print_json(&serde_json::json!({ "user": name, "hash": hash }));
    } else {
        println!("{name} = \"{hash}\"");
    }
    Ok(())
}

/// One line from stdin, without its line ending; on a terminal the echo
/// is turned off while it is typed.
fn read_password() -> Result<String, Error> {
    let stdin = std::io::stdin();
    // Echo off before the prompt: what is typed after it is never shown.
    let _echo = if stdin.is_terminal() {
        let echo = NoEcho::start();
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
        echo
    } else {
        None
    };
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Runtime(format!("cannot read the password: {e}")))?;
    if _echo.is_some() {
        eprintln!();
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// The terminal's echo off until dropped.
struct NoEcho(libc::termios);

impl NoEcho {
    fn start() -> Option<Self> {
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0 and
        // we only use it when that succeeded.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return None;
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(Self(saved))
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        // SAFETY: restores the attributes tcgetattr returned for fd 0.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0);
        }
    }
}
