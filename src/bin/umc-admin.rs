//! umc-admin: the admin CLI. Talks to umcd's admin API; never opens the database.

use clap::Parser;

fn main() {
    let cli = umc::cli::Cli::parse();
    if let Err(f) = umc::cli::run(cli) {
        eprintln!("umc-admin: {}", f.message);
        std::process::exit(f.code);
    }
}
