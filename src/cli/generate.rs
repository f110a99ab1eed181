//! `allerta generate man|completions SHELL --out DIR` (hidden): the man
//! pages and shell completions, generated from the clap definitions so they
//! never drift from the real options. Used to build the Debian package.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Subcommand};
use clap_complete::Shell;

use crate::error::Error;

#[derive(Subcommand, Debug)]
pub enum GenerateCommand {
    /// Man pages: allerta.1 and one allerta-<command>.1 per subcommand
    Man(OutDir),
    /// Completion script for one shell
    Completions {
        shell: Shell,
        #[command(flatten)]
        out: OutDir,
    },
}

#[derive(Args, Debug)]
pub struct OutDir {
    /// Directory to write into (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(command: &GenerateCommand) -> Result<(), Error> {
    let dir = match command {
        GenerateCommand::Man(o) | GenerateCommand::Completions { out: o, .. } => &o.out,
    };
    let io = |e: std::io::Error| Error::Runtime(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut cmd = super::Cli::command();
    match command {
        GenerateCommand::Man(_) => {
            // No pages for clap's implicit `help` subcommands.
            cmd = without_help_subcommands(cmd);
            clap_mangen::generate_to(cmd, dir).map_err(io)?;
        }
        GenerateCommand::Completions { shell, .. } => {
            clap_complete::generate_to(*shell, &mut cmd, "allerta", dir).map_err(io)?;
        }
    }
    Ok(())
}

fn without_help_subcommands(cmd: clap::Command) -> clap::Command {
    cmd.disable_help_subcommand(true)
        .mut_subcommands(without_help_subcommands)
}
