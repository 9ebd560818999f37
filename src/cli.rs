//! The administrative subcommands (`switchboard user ...`, `switchboard token ...`):
//! they open the store directly, so they work while the server runs or before it
//! ever has. Their output is for people at a terminal, hence plain `println!`.
#![allow(clippy::print_stdout)]

use std::io::BufRead;

use anyhow::{Context, anyhow, bail};

use crate::auth::model::{NewToken, unix_now};
use crate::auth::{password, token};
use crate::config::{TokenAction, UserAction};
use crate::directory::input::{Field, Password, UserInput};
use crate::directory::model::{NewUser, email_key};
use crate::directory::service::Directory;
use crate::error::ApiError;
use crate::hub::message::Author;
use crate::store::{NewPassword, Store};

/// The password to set for `account`: the first line of stdin (which must pass the
/// password policy), or a generated one (printed).
fn obtain_password(
    from_stdin: bool,
    policy: &password::Policy,
    account: password::Account<'_>,
) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((policy.generate(account), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if let Err(problem) = policy.check(&password, account) {
        bail!("the password {problem} (see README, \"Security\")");
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

pub async fn user(
    store: &dyn Store,
    action: UserAction,
    policy: &password::Policy,
) -> anyhow::Result<()> {
    match action {
        UserAction::Add {
            email,
            name,
            role,
            password_stdin,
        } => {
            // The API's rules for a new user, the password policy included.
            let input = UserInput {
                name: Field::Given(name),
                email: Field::Given(email),
                role: Field::Given(role),
                password: Field::Absent,
            };
            let (user, _) =
                NewUser::parse(&input).map_err(|invalid| anyhow!("invalid account: {invalid}"))?;
            let account = password::Account {
                name: &user.name,
                email: &user.email,
            };
            let (secret, generated) = obtain_password(password_stdin, policy, account)?;
            let taken = user.email.clone();
            let directory = Directory { store, policy };
            let (user, _) = directory
                .create(Author::system(), user, Some(Password::new(secret.clone())))
                .await
                .map_err(|error| match error {
                    ApiError::Conflict { fields, .. } if fields.contains_key("email") => anyhow!(
                        "{taken} is already in the directory; to let it log in, set its password with `switchboard user passwd --email {taken}`"
                    ),
                    other => anyhow!("{}", other.envelope().error),
                })?;
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
                .find_login(&email_key(email.trim()))
                .await?
                .with_context(|| format!("no account has the email {email}"))?;
            let account = password::Account {
                name: &record.user.name,
                email: &record.user.email,
            };
            let (secret, generated) = obtain_password(password_stdin, policy, account)?;
            let new = NewPassword {
                hash: password::hash(secret.clone()).await?,
                keep_token: None,
            };
            let ended = store
                .set_password(record.user.id, &new)
                .await?
                .with_context(|| format!("no account has the email {email}"))?;
            println!(
                "password changed for {}; {} sessions ended, {} API tokens revoked",
                record.user.email,
                ended.sessions.len(),
                ended.tokens.len()
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
                .find_login(&email_key(email.trim()))
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
                bail!(
                    "no unrevoked token has the id {id}; `GET /api/tokens` lists the tokens and their ids"
                );
            }
        }
    }
    Ok(())
}
