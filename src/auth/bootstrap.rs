//! The first admin: on a start with no admin account, one is created so somebody can
//! log in at all. Its password is `SWITCHBOARD_ADMIN_PASSWORD` when given (it must
//! pass the password policy, or the server does not start), otherwise random and
//! printed once to the console (stderr), never logged.

use super::password;
use crate::Config;
use crate::directory::events::{Change, event_of};
use crate::directory::model::{NewUser, Role};
use crate::hub::message::Author;
use crate::store::{Store, StoreError};

pub async fn ensure_admin(store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    if store.count_admins().await? > 0 {
        return Ok(());
    }
    const NAME: &str = "Admin";
    let policy = password::Policy::new(config.security.password_min_chars);
    let account = password::Account {
        name: NAME,
        email: &config.security.admin_email,
    };
    let (secret, generated) = match &config.security.admin_password {
        Some(given) if !given.expose().is_empty() => {
            let given = given.expose().to_owned();
            if let Err(problem) = policy.check(&given, account) {
                anyhow::bail!(
                    "SWITCHBOARD_ADMIN_PASSWORD {problem} (see README, \"Security\"); \
                     or leave it unset to have a random one generated"
                );
            }
            (given, false)
        }
        _ => (policy.generate(account), true),
    };
    let admin = NewUser {
        name: NAME.into(),
        email: config.security.admin_email.clone(),
        role: Role::Admin,
        password_hash: Some(password::hash(secret.clone()).await?),
    };
    match store
        .insert_user(&admin, event_of(Change::Created, Author::system()))
        .await
    {
        Ok((user, _)) => {
            tracing::info!(user_id = user.id, email = %user.email, "created the first admin account")
        }
        Err(StoreError::EmailTaken) => anyhow::bail!(
            "there is no admin, and {} belongs to a member: give another --admin-email, \
             or make that account an admin with `switchboard user add`",
            config.security.admin_email
        ),
        Err(other) => return Err(other.into()),
    }
    if generated {
        // The one time this password exists in clear: on the console, not in the log.
        eprintln!(
            "\n  First admin account created.\n    email:    {}\n    password: {secret}\n  \
             It is shown only this once. Change it with `switchboard user passwd --email {}`.\n",
            config.security.admin_email, config.security.admin_email
        );
    }
    Ok(())
}
