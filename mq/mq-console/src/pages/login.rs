//! Log-in and log-out. The accounts are read again at every log-in (an
//! edited `users.properties` counts at once); the password is compared in
//! constant time, also against a stand-in when the name is unknown, and a
//! failed attempt waits before it is answered to slow guessing.

use std::time::Duration;

use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, DOCTYPE};

use crate::i18n::Lang;
use crate::layout::csrf;
use crate::session::{self, same_secret, Flash, Identity};
use crate::web::{CheckedForm, ConsoleError, Ctx};

/// How long a failed log-in waits before its answer.
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(300);

/// `GET /login`.
pub async fn form(ctx: Ctx) -> Response {
    if !ctx.app.config.login_required || ctx.viewer.is_logged_in() {
        return Redirect::to("/").into_response();
    }
    let t = ctx.t;
    let other = match ctx.lang {
        Lang::En => (Lang::Zh, "中文"),
        Lang::Zh => (Lang::En, "EN"),
    };
    Html(
        html! {
            (DOCTYPE)
            html lang=(ctx.lang.html()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (t.login) " · " (t.console) }
                    link rel="stylesheet" href="/static/console.css";
                }
                body {
                    div.login {
                        h1 { (t.console) }
                        @if let Some(flash) = &ctx.viewer.flash {
                            div class=(if flash.ok { "flash ok" } else { "flash error" }) role="status" { (flash.text) }
                        }
                        form.stack method="post" action="/login" {
                            (csrf(&ctx))
                            label { (t.username) input type="text" name="username" autocomplete="username" required autofocus; }
                            label { (t.password) input type="password" name="password" autocomplete="current-password" required; }
                            button type="submit" { (t.login) }
                        }
                        p.note { a href=(format!("/login?lang={}", other.0.code())) { (other.1) } }
                    }
                }
            }
        }
        .into_string(),
    )
    .into_response()
}

/// `POST /login`.
pub async fn submit(ctx: Ctx, form: CheckedForm) -> Result<Response, ConsoleError> {
    let app = &ctx.app;
    if !app.config.login_required {
        return Ok(Redirect::to("/").into_response());
    }
    let name = form.fields.line("username")?;
    let password = form.fields.get("password");
    let users = app.config.load_users().map_err(|e| {
        tracing::error!(error = %e, "cannot read the console's accounts");
        ConsoleError::Internal
    })?;
    let user = users.iter().find(|u| u.name == name);
    // Compare against something even for an unknown name, so the time
    // taken does not say which names exist.
    let expected = user.map_or("\u{0}unknown-account\u{0}", |u| u.password.as_str());
    let matches = same_secret(password, expected) && user.is_some();
    let Some(user) = user.filter(|_| matches) else {
        tracing::warn!(user = name, "failed console log-in");
        tokio::time::sleep(FAILED_LOGIN_DELAY).await;
        app.sessions.set_flash(
            &form.viewer.id,
            Flash {
                ok: false,
                text: ctx.t.login_failed.to_owned(),
            },
        );
        return Ok(Redirect::to("/login").into_response());
    };
    // A new session: the one from before the log-in is worth nothing now.
    app.sessions.remove(&form.viewer.id);
    let viewer = app.sessions.create(Identity::Operator {
        name: user.name.clone(),
        admin: user.admin,
    });
    tracing::info!(user = %user.name, admin = user.admin, "console log-in");
    Ok((
        [(header::SET_COOKIE, session::cookie(&viewer.id))],
        Redirect::to("/"),
    )
        .into_response())
}

/// `POST /logout`.
pub async fn logout(ctx: Ctx, form: CheckedForm) -> Response {
    ctx.app.sessions.remove(&form.viewer.id);
    let to = if ctx.app.config.login_required {
        "/login"
    } else {
        "/"
    };
    (
        [(header::SET_COOKIE, session::clear_cookie())],
        Redirect::to(to),
    )
        .into_response()
}
