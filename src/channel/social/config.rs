//! `[channels.facebook]`, `[channels.mastodon]`, `[channels.bluesky]` (SPEC
//! §15): the raw TOML tables and their typed, checked form. Secrets stay
//! references, read only when a command posts or checks.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::SecretRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocialTransport {
    Api,
    Outbox,
}

impl SocialTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Outbox => "outbox",
        }
    }
}

/// A Facebook Page, through the Graph API.
#[derive(Debug)]
pub struct Facebook {
    pub transport: SocialTransport,
    pub api_url: String,
    pub page_id: String,
    /// A long-lived Page access token.
    pub access_token: Option<SecretRef>,
}

/// A Mastodon account.
#[derive(Debug)]
pub struct Mastodon {
    pub transport: SocialTransport,
    pub instance_url: String,
    /// An application token with `write:statuses` (and `read:accounts`
    /// for `allerta check`).
    pub access_token: Option<SecretRef>,
    pub visibility: String,
}

/// A Bluesky account, through its PDS (the AT Protocol).
#[derive(Debug)]
pub struct Bluesky {
    pub transport: SocialTransport,
    pub service_url: String,
    /// The handle (or DID).
    pub identifier: String,
    pub app_password: Option<SecretRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFacebook {
    transport: SocialTransport,
    api_url: Option<String>,
    page_id: Option<String>,
    access_token: Option<String>,
    access_token_env: Option<String>,
    access_token_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMastodon {
    transport: SocialTransport,
    instance_url: Option<String>,
    access_token: Option<String>,
    access_token_env: Option<String>,
    access_token_file: Option<PathBuf>,
    visibility: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBluesky {
    transport: SocialTransport,
    service_url: Option<String>,
    identifier: Option<String>,
    app_password: Option<String>,
    app_password_env: Option<String>,
    app_password_file: Option<PathBuf>,
}

/// How `Config::parse` turns a secret's three spellings into a reference
/// (`key`, inline, `_env`, `_file`), with its own path rules and errors.
pub type SecretFn<'a, E> = &'a dyn Fn(
    &str,
    Option<String>,
    Option<String>,
    Option<PathBuf>,
) -> Result<Option<SecretRef>, E>;

/// A config error at `key`.
pub type InvalidFn<'a, E> = &'a dyn Fn(&str, String) -> E;

/// An `http(s)://` base URL without a trailing slash.
fn base_url<E>(key: &str, raw: &str, invalid: InvalidFn<'_, E>) -> Result<String, E> {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base() => {
            Ok(raw.trim_end_matches('/').to_owned())
        }
        _ => Err(invalid(key, format!("`{raw}` is not an http(s) URL"))),
    }
}

fn required<E>(
    key: &str,
    value: Option<String>,
    why: &str,
    invalid: InvalidFn<'_, E>,
) -> Result<String, E> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(invalid(key, format!("required: {why}"))),
    }
}

/// The token is needed only to post for real.
fn token_for<E>(
    transport: SocialTransport,
    key: &str,
    secret: Option<SecretRef>,
    invalid: InvalidFn<'_, E>,
) -> Result<Option<SecretRef>, E> {
    if transport == SocialTransport::Api && secret.is_none() {
        let name = key.rsplit('.').next().unwrap_or(key);
        return Err(invalid(
            key,
            format!("transport = \"api\" needs {name}, {name}_env or {name}_file"),
        ));
    }
    Ok(secret)
}

impl RawFacebook {
    pub fn resolve<E>(
        self,
        secret: SecretFn<'_, E>,
        invalid: InvalidFn<'_, E>,
    ) -> Result<Facebook, E> {
        let key = "channels.facebook.access_token";
        let token = secret(
            key,
            self.access_token,
            self.access_token_env,
            self.access_token_file,
        )?;
        let page_id = required(
            "channels.facebook.page_id",
            self.page_id,
            "the numeric id of the comune's Page",
            invalid,
        )?;
        if !page_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(
                "channels.facebook.page_id",
                format!("`{page_id}` is not a Page id (digits only; see docs/social.md)"),
            ));
        }
        Ok(Facebook {
            transport: self.transport,
            api_url: base_url(
                "channels.facebook.api_url",
                self.api_url
                    .as_deref()
                    .unwrap_or("https://graph.facebook.com/v21.0"),
                invalid,
            )?,
            page_id,
            access_token: token_for(self.transport, key, token, invalid)?,
        })
    }
}

impl RawMastodon {
    pub fn resolve<E>(
        self,
        secret: SecretFn<'_, E>,
        invalid: InvalidFn<'_, E>,
    ) -> Result<Mastodon, E> {
        let key = "channels.mastodon.access_token";
        let token = secret(
            key,
            self.access_token,
            self.access_token_env,
            self.access_token_file,
        )?;
        let instance = required(
            "channels.mastodon.instance_url",
            self.instance_url,
            "the account's server, e.g. https://mastodon.example",
            invalid,
        )?;
        let visibility = self.visibility.unwrap_or_else(|| "public".into());
        if !["public", "unlisted", "private"].contains(&visibility.as_str()) {
            return Err(invalid(
                "channels.mastodon.visibility",
                format!("`{visibility}`: expected public, unlisted or private"),
            ));
        }
        Ok(Mastodon {
            transport: self.transport,
            instance_url: base_url("channels.mastodon.instance_url", &instance, invalid)?,
            access_token: token_for(self.transport, key, token, invalid)?,
            visibility,
        })
    }
}

impl RawBluesky {
    pub fn resolve<E>(
        self,
        secret: SecretFn<'_, E>,
        invalid: InvalidFn<'_, E>,
    ) -> Result<Bluesky, E> {
        let key = "channels.bluesky.app_password";
        let password = secret(
            key,
            self.app_password,
            self.app_password_env,
            self.app_password_file,
        )?;
        let identifier = required(
            "channels.bluesky.identifier",
            self.identifier,
            "the account's handle, e.g. comune.example.it",
            invalid,
        )?;
        Ok(Bluesky {
            transport: self.transport,
            service_url: base_url(
                "channels.bluesky.service_url",
                self.service_url.as_deref().unwrap_or("https://bsky.social"),
                invalid,
            )?,
            identifier: identifier.trim_start_matches('@').to_owned(),
            app_password: token_for(self.transport, key, password, invalid)?,
        })
    }
}
