//! The administrative subcommands (`switchboard user ...`, `switchboard token ...`):
//! they open the store directly, so they work while the server runs or before it
//! ever has. Their output is for people at a terminal, hence plain `println!`.
#![allow(clippy::print_stdout)]

use std::io::BufRead;

use anyhow::{Context, bail};

use crate::auth::model::{NewToken, unix_now};
use crate::auth::{password, token};
use crate::config::{TokenAction, UserAction};
use crate::directory::model::{self, NewUser, Role, match_key};
use crate::error::FieldErrors;
use crate::store::Store;

/// The password to set: the first line of stdin, or a generated one (printed).
fn obtain_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((password::random_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password::check_policy(&password, "password").is_err() {
        bail!(
            "the password must be {} to {} characters",
            password::MIN_CHARS,
            password::MAX_CHARS
        );
    }
    Ok((password, false))
}

/// `switchboard backup PATH`: SQLite only; PostgreSQL has its own tools.
pub fn backup(database_url: &str, dest: &std::path::Path) -> anyhow::Result<()> {
    if crate::store::is_postgres_url(database_url) {
        bail!("backup copies a SQLite database; for PostgreSQL use pg_dump (see README)");
    }
    let source = crate::store::sqlite::SqliteStore::path_of(database_url)?;
    let started = std::time::Instant::now();
    let report = crate::store::sqlite::backup::backup(&source, dest)?;
    println!(
        "backed up {} to {} ({} pages, {} bytes, {} ms)",
        source.display(),
        dest.display(),
        report.pages,
        report.bytes,
        started.elapsed().as_millis()
    );
    Ok(())
}

pub async fn user(store: &dyn Store, action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::Add {
            email,
            name,
            role,
            password_stdin,
        } => {
            let mut errors = FieldErrors::new();
            let name = model::check_name(&name, &mut errors);
            let email = model::check_email(&email, &mut errors);
            let (Some(name), Some(email)) = (name, email) else {
                bail!("invalid account: {errors:?}");
            };
            let (secret, generated) = obtain_password(password_stdin)?;
            let (user, _) = store
                .insert_user(
                    &NewUser {
                        name,
                        email,
                        role: Role::try_from(role).map_err(anyhow::Error::msg)?,
                        password_hash: Some(password::hash(secret.clone()).await?),
                    },
                    &crate::hub::message::Author::system(),
                )
                .await?;
            println!(
                "added {} <{}> as {}, id {}",
                user.name,
                user.email,
                user.role.as_str(),
                user.id
            );
            if generated {
                println!("password: {secret}");
            }
        }
        UserAction::Passwd {
            email,
            password_stdin,
        } => {
            let record = store
                .find_login(&match_key(email.trim()))
                .await?
                .with_context(|| format!("no account has the email {email}"))?;
            let (secret, generated) = obtain_password(password_stdin)?;
            store
                .set_password(record.user.id, &password::hash(secret.clone()).await?)
                .await?;
            println!(
                "password changed for {}; their sessions have ended",
                record.user.email
            );
            if generated {
                println!("password: {secret}");
            }
        }
        UserAction::List => {
            for user in store.list_accounts().await? {
                println!(
                    "{:>6}  {:<7} {} <{}>",
                    user.id,
                    user.role.as_str(),
                    user.name,
                    user.email
                );
            }
        }
    }
    Ok(())
}

pub async fn token(store: &dyn Store, action: TokenAction) -> anyhow::Result<()> {
    match action {
        TokenAction::Create {
            email,
            name,
            expires_days,
        } => {
            let record = store
                .find_login(&match_key(email.trim()))
                .await?
                .with_context(|| format!("no account has the email {email}"))?;
            let minted = token::mint();
            let now = unix_now();
            let created = store
                .insert_token(&NewToken {
                    user_id: record.user.id,
                    name,
                    token_hash: minted.hash,
                    prefix: minted.prefix,
                    created_at: now,
                    expires_at: expires_days.map(|days| now + days.max(1) * 86_400),
                })
                .await?;
            println!(
                "token {} for {} (shown only now):",
                created.id, record.user.email
            );
            println!("{}", minted.token);
        }
        TokenAction::Revoke { id } => {
            if store.revoke_token(id, unix_now()).await? {
                println!("token {id} revoked");
            } else {
                bail!("no unrevoked token has the id {id}");
            }
        }
    }
    Ok(())
}
