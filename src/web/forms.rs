//! The form posts of the pages, for browsers without JavaScript (the script sends the
//! same changes to the JSON API instead). Each succeeds with a 303 to `/` (so a reload
//! does not post again) or answers the same page with the server's field errors
//! beside the fields and the values typed kept (422, or 409 for a taken email). A form
//! over the body limit is a 413.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{DirectoryParams, directory_page, edit_page};
use super::views::{PageError, UserForm, render};
use crate::AppState;
use crate::auth::Identity;
use crate::auth::csrf::CsrfToken;
use crate::directory::input::{Field, UserInput};
use crate::directory::model::{NewUser, UserChanges};
use crate::directory::service::{create_user, delete_user, update_user};
use crate::error::ApiError;
use crate::http::extract::Path;

/// The fields of the create and edit forms. All optional: a missing field is the
/// directory's to name, not a parse failure.
#[derive(Deserialize, Default)]
pub struct UserFormInput {
    name: Option<String>,
    email: Option<String>,
    role: Option<String>,
}

impl UserFormInput {
    /// What the directory parses. `role` goes in only for admins, and not blank
    /// (members' forms have no role field; one added by hand would be refused by the
    /// directory anyway).
    fn to_input(&self, admin: bool) -> UserInput {
        user_input(&self.name, &self.email, &self.role, admin)
    }

    fn into_form(self, error: &ApiError) -> UserForm {
        let (errors, message) = match error {
            ApiError::Validation { fields, .. } | ApiError::Conflict { fields, .. }
                if !fields.is_empty() =>
            {
                (fields.clone(), None)
            }
            other => (Default::default(), Some(other.to_string())),
        };
        UserForm {
            name: self.name.unwrap_or_default(),
            email: self.email.unwrap_or_default(),
            role: self.role.unwrap_or_default(),
            errors,
            message,
        }
    }
}

/// Errors the form shows beside its fields; the rest get the error page.
fn is_field_error(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::Validation { .. } | ApiError::Conflict { .. }
    ) && !matches!(error, ApiError::Conflict { fields, .. } if fields.is_empty())
}

/// A profile form's fields as the directory reads them (shared with the account
/// page's profile form).
pub fn user_input(
    name: &Option<String>,
    email: &Option<String>,
    role: &Option<String>,
    admin: bool,
) -> UserInput {
    UserInput {
        name: name.clone().into(),
        email: email.clone().into(),
        role: role.clone().filter(|r| admin && !r.is_empty()).into(),
        password: Field::Absent,
    }
}

/// A posted form's fields, or why not: over the body limit is a 413, as on every
/// other route, not a malformed form. Shared by every form post of the pages.
pub fn form_body<T>(form: Result<Form<T>, FormRejection>) -> Result<T, PageError> {
    match form {
        Ok(Form(input)) => Ok(input),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(PageError(ApiError::PayloadTooLarge))
        }
        Err(rejection) => Err(PageError(ApiError::bad_request(
            "invalid_form",
            format!("The form could not be read: {}", rejection.body_text()),
        ))),
    }
}

/// `POST /users`: an admin adds a user.
pub async fn create(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    form: Result<Form<UserFormInput>, FormRejection>,
) -> Result<Response, PageError> {
    identity.require_admin()?;
    let input = form_body(form)?;
    let created = match NewUser::parse(&input.to_input(true)) {
        Ok((user, password)) => create_user(&state, &identity, user, password).await,
        Err(invalid) => Err(invalid.into()),
    };
    match created {
        Ok(user) => {
            tracing::info!(user_id = user.id, "user created from the page");
            Ok(Redirect::to("/?done=created").into_response())
        }
        Err(error) if is_field_error(&error) => {
            let status = error.status();
            let form = input.into_form(&error);
            let page =
                directory_page(&state, &identity, &DirectoryParams::default(), form, csrf).await?;
            Ok(render(&page, status))
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /users/{id}`: a user edits themselves, or an admin edits anyone.
pub async fn update(
    State(state): State<AppState>,
    identity: Identity,
    csrf: CsrfToken,
    id: Result<Path<i64>, ApiError>,
    form: Result<Form<UserFormInput>, FormRejection>,
) -> Result<Response, PageError> {
    let Path(id) = id?;
    identity.require_self_or_admin(id)?;
    let input = form_body(form)?;
    let updated = match UserChanges::parse(&input.to_input(identity.is_admin())) {
        Ok((changes, password)) => update_user(&state, &identity, id, changes, password).await,
        Err(invalid) => Err(invalid.into()),
    };
    match updated {
        Ok(_) => Ok(Redirect::to("/?done=updated").into_response()),
        Err(error) if is_field_error(&error) => {
            let status = error.status();
            let form = input.into_form(&error);
            let page = edit_page(&state, &identity, id, Some(form), csrf).await?;
            Ok(render(&page, status))
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /users/{id}/delete`: an admin deletes a user (never the last admin).
pub async fn delete(
    State(state): State<AppState>,
    identity: Identity,
    id: Result<Path<i64>, ApiError>,
) -> Result<Response, PageError> {
    let Path(id) = id?;
    identity.require_admin()?;
    delete_user(&state, &identity, id).await?;
    Ok(Redirect::to("/?done=deleted").into_response())
}
