//! umc-admin: the admin CLI. Talks to umcd's admin API; never opens the database.

use clap::Parser;

fn main() {
    let cli = umc::cli::Cli::parse();
    let result = umc::cli::run(cli);
    // A reader that went away (`| head`) is no failure; a full disk is.
    let written = match umc::cli::term::finish() {
        Some(e) => Err(umc::cli::Failure {
            code: 1,
            message: format!("writing to stdout: {e}"),
        }),
        None => Ok(()),
    };
    if let Err(f) = result.and(written) {
        umc::cli::term::err_raw(&format!(
            "umc-admin: {}\n",
            umc::cli::term::clean(&f.message)
        ));
        std::process::exit(f.code);
    }
}
