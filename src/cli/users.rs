//! `postbackd user add|list|remove`: dashboard users, through the running
//! server's admin API like every management command. The password is read
//! from standard input, never from the command line (which every local
//! user can see in the process list).

use clap::Subcommand;
use hyper::Method;
use serde_json::json;

use super::{Remote, admin};

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a dashboard user: `echo "$PASSWORD" | postbackd user add alice --role admin --password-stdin`.
    Add {
        name: String,
        /// admin (changes everything, sees secrets) or viewer (reads, changes nothing).
        #[arg(long)]
        role: String,
        /// Read the password (at least 10 characters) from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Change a user's role or password (a new password signs them out
    /// everywhere): `postbackd user set bob --role admin`.
    Set {
        name: String,
        /// admin or viewer.
        #[arg(long)]
        role: Option<String>,
        /// Read the new password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// List dashboard users.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a dashboard user and end their sessions.
    Remove {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

pub async fn run(cmd: UserCmd) -> Result<(), String> {
    match cmd {
        UserCmd::Add {
            name,
            role,
            password_stdin,
            remote,
        } => {
            if !password_stdin {
                return Err(
                    "pass --password-stdin and the password on standard input, e.g. \
                     `printf '%s\\n' \"$PASSWORD\" | postbackd user add NAME --role admin --password-stdin`"
                        .into(),
                );
            }
            let password = read_password()?;
            let body = json!({"name": name, "role": role, "password": password});
            let u = admin(&remote, Method::POST, "/api/v1/users", Some(&body)).await?;
            println!(
                "user {} created ({})",
                u["name"].as_str().unwrap_or(""),
                u["role"].as_str().unwrap_or("")
            );
            Ok(())
        }
        UserCmd::Set {
            name,
            role,
            password_stdin,
            remote,
        } => {
            if role.is_none() && !password_stdin {
                return Err(
                    "nothing to change: pass --role admin|viewer and/or --password-stdin".into(),
                );
            }
            let mut body = json!({});
            if let Some(r) = role {
                body["role"] = json!(r);
            }
            if password_stdin {
                body["password"] = json!(read_password()?);
            }
            let u = admin(&remote, Method::PATCH, &user_path(&name), Some(&body)).await?;
            println!(
                "user {} updated ({})",
                u["name"].as_str().unwrap_or(""),
                u["role"].as_str().unwrap_or("")
            );
            Ok(())
        }
        UserCmd::List { remote } => {
            let v = admin(&remote, Method::GET, "/api/v1/users", None).await?;
            for u in v["items"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}",
                    u["name"].as_str().unwrap_or(""),
                    u["role"].as_str().unwrap_or(""),
                    u["created_at"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        UserCmd::Remove { name, remote } => {
            admin(&remote, Method::DELETE, &user_path(&name), None).await?;
            println!("user {name} removed; their sessions are ended");
            Ok(())
        }
    }
}

fn user_path(name: &str) -> String {
    format!(
        "/api/v1/users/{}",
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// The first line of standard input, without its line ending.
fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        return Err("standard input held no password; pipe it in, e.g. `printf '%s\\n' \"$PASSWORD\" | postbackd user add ...`".into());
    }
    Ok(p)
}
