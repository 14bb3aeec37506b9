//! What the browser remembers: connection settings (localStorage, shared by the tabs of this
//! browser; passwords and tokens in sessionStorage unless the user asks to remember them) and the
//! user's identity (sessionStorage, one per tab).

use serde::{Deserialize, Serialize};

const SETTINGS_KEY: &str = "via.settings";
const IDENTITY_KEY: &str = "via.identity";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

/// Random lowercase hex, `len` characters.
pub fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..len].to_owned()
}

/// Now, as an RFC 3339 UTC string.
pub fn now_iso() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

/// The tab's identity: `user-xxxx` until the user picks another name.
pub fn load_identity() -> String {
    session_storage()
        .and_then(|s| s.get_item(IDENTITY_KEY).ok().flatten())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| {
            let name = format!("user-{}", random_hex(4));
            save_identity(&name);
            name
        })
}

pub fn save_identity(name: &str) {
    if let Some(s) = session_storage() {
        let _ = s.set_item(IDENTITY_KEY, name);
    }
}

/// The system user's password for /server, kept for this tab's session only; empty when none.
pub fn load_sys_password() -> String {
    session_storage()
        .and_then(|s| s.get_item(SYS_PASSWORD_KEY).ok().flatten())
        .unwrap_or_default()
}

/// Keeps `password` for this tab's session; an empty one is forgotten.
pub fn save_sys_password(password: &str) {
    if let Some(s) = session_storage() {
        let _ = if password.is_empty() {
            s.remove_item(SYS_PASSWORD_KEY)
        } else {
            s.set_item(SYS_PASSWORD_KEY, password)
        };
    }
}

const SYS_PASSWORD_KEY: &str = "via.sys";

/// Connection settings, edited in the settings panel. No `Debug`: it holds credentials.
///
/// Servers, name and user live in localStorage (every tab of this browser); the password and the
/// token only in this tab's sessionStorage, unless the user ticked `remember`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Comma-separated WebSocket urls.
    pub servers: String,
    pub name: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub token: String,
    /// Keep the password and the token in localStorage too ("remember on this device").
    #[serde(default)]
    pub remember: bool,
}

thread_local! {
    static APPLIED: std::cell::RefCell<Option<Settings>> = const { std::cell::RefCell::new(None) };
    /// The user [`Settings::for_new_tab`] left out, until settings are applied.
    static SIGN_IN_AS: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The user this tab did not connect as for want of the password (see
/// [`Settings::for_new_tab`]), to fill in the sign-in dialog; `None` once settings are applied.
pub fn user_to_sign_in() -> Option<String> {
    SIGN_IN_AS.with(|u| u.borrow().clone())
}

pub fn set_user_to_sign_in(user: Option<String>) {
    SIGN_IN_AS.with(|u| *u.borrow_mut() = user);
}

/// The secret part of [`Settings`], kept for the session only.
#[derive(Default, Serialize, Deserialize)]
struct Secrets {
    password: String,
    token: String,
}

const SECRETS_KEY: &str = "via.secrets";

impl Settings {
    /// `ws://<page host>:8080`, the nats.sh server's WebSocket port; `wss://` on a page served
    /// over https, where a browser refuses a plain WebSocket (mixed content).
    pub fn defaults() -> Settings {
        let location = web_sys::window().map(|w| w.location());
        let host = location
            .as_ref()
            .and_then(|l| l.hostname().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let scheme = match location.and_then(|l| l.protocol().ok()).as_deref() {
            Some("https:") => "wss",
            _ => "ws",
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        Settings {
            servers: format!("{scheme}://{host}:8080"),
            name: "via-app".to_owned(),
            user: String::new(),
            password: String::new(),
            token: String::new(),
            remember: false,
        }
    }

    pub fn load() -> Settings {
        let Some(mut settings) = local_storage()
            .and_then(|s| s.get_item(SETTINGS_KEY).ok().flatten())
            .and_then(|json| serde_json::from_str::<Settings>(&json).ok())
        else {
            return Settings::defaults();
        };
        // Saved by an earlier version, which kept secrets in localStorage: moved to the session.
        let mut resave =
            !settings.remember && (!settings.password.is_empty() || !settings.token.is_empty());
        // Saved by a version from before nats-ws refused credentials in a url (the tab would not
        // connect with them now): they move to the user and password fields, and so out of
        // localStorage unless remembered.
        let mut from_url = None;
        if let Some((servers, found)) = credentials_out_of_urls(&settings.servers) {
            settings.servers = servers;
            from_url = found;
            resave = true;
        }
        if !settings.remember {
            let session = session_storage()
                .and_then(|s| s.get_item(SECRETS_KEY).ok().flatten())
                .and_then(|json| serde_json::from_str::<Secrets>(&json).ok());
            if let Some(secrets) = session {
                settings.password = secrets.password;
                settings.token = secrets.token;
            }
        }
        // What the fields name wins over what the url held.
        if settings.user.is_empty() && settings.token.is_empty() {
            match from_url {
                Some(UrlCredentials::UserPassword(user, password)) => {
                    settings.user = user;
                    settings.password = password;
                }
                Some(UrlCredentials::Token(token)) => settings.token = token,
                None => {}
            }
        }
        if resave {
            settings.save();
        }
        settings
    }

    pub fn save(&self) {
        let mut shared = self.clone();
        if !self.remember {
            shared.password.clear();
            shared.token.clear();
        }
        if let (Some(s), Ok(json)) = (local_storage(), serde_json::to_string(&shared)) {
            let _ = s.set_item(SETTINGS_KEY, &json);
        }
        if let Some(s) = session_storage() {
            let secrets = Secrets {
                password: self.password.clone(),
                token: self.token.clone(),
            };
            let _ = match serde_json::to_string(&secrets) {
                Ok(json) if !self.remember => s.set_item(SECRETS_KEY, &json),
                _ => s.remove_item(SECRETS_KEY),
            };
        }
    }

    /// What a tab starts with: these settings, less a user whose password is not in this tab
    /// (another tab signed in without "remember", and its password stays in that tab's session):
    /// with the user and no password the server refuses the connection and the tab would stay
    /// Offline. The user left out comes back beside, to be said and offered in the dialog.
    pub fn for_new_tab(mut self) -> (Settings, Option<String>) {
        let password_elsewhere = !self.remember
            && !self.user.is_empty()
            && self.password.is_empty()
            && self.token.is_empty();
        if !password_elsewhere {
            return (self, None);
        }
        let user = std::mem::take(&mut self.user);
        (self, Some(user))
    }

    /// The settings this tab's connection was made with: what [`Settings::applied`] gives from
    /// now on. (The saved ones are every tab's: another tab may have saved others since.)
    pub fn mark_applied(&self) {
        APPLIED.with(|a| *a.borrow_mut() = Some(self.clone()));
        set_user_to_sign_in(None);
    }

    /// The settings this tab's connection was made with ([`Settings::mark_applied`]); the saved
    /// ones before any.
    pub fn applied() -> Settings {
        APPLIED
            .with(|a| a.borrow().clone())
            .unwrap_or_else(Settings::load)
    }

    /// The connection's options, with the app's reconnect policy ([`RECONNECT`]).
    pub fn options(&self) -> nats_ws::Options {
        let servers: Vec<String> = self
            .servers
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut options = nats_ws::Options::with_servers(servers).reconnect(RECONNECT);
        if !self.name.trim().is_empty() {
            options = options.name(self.name.trim());
        }
        if !self.token.is_empty() {
            options = options.token(&self.token);
        } else if !self.user.is_empty() {
            options = options.user_password(&self.user, &self.password);
        }
        options
    }
}

/// How a tab tries to get its server back: for as long as it takes (the client's default gives up
/// after ten tries, about 2.5 minutes, and a tab left Offline would never see the server return on
/// its own, with every click of the outage waiting on it), and at most 5 s apart, so a server
/// back is used within seconds (nats.js and nats.go try every 2 s). Half a second of jitter
/// spreads the tabs of many browsers over the first tries after a restart.
pub const RECONNECT: nats_ws::ReconnectPolicy = nats_ws::ReconnectPolicy {
    initial_delay: std::time::Duration::from_secs(1),
    factor: 1.5,
    max_delay: std::time::Duration::from_secs(5),
    max_attempts: None,
    jitter: std::time::Duration::from_millis(500),
};

/// Credentials that were part of a server url.
#[derive(PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
enum UrlCredentials {
    /// `user:password@`
    UserPassword(String, String),
    /// `token@` (as nats.go reads a user without a password)
    Token(String),
}

/// `servers` (comma-separated urls) without the user-info part of any url (`user:password@`), and
/// the first url's credentials (percent-decoded); `None` when no url has any.
fn credentials_out_of_urls(servers: &str) -> Option<(String, Option<UrlCredentials>)> {
    let mut found = None;
    let mut changed = false;
    // Split where `options` splits, each piece keeping its separator.
    let urls: Vec<String> = servers
        .split_inclusive([',', ' ', '\n'])
        .map(|piece| {
            let (url, separator) = match piece.char_indices().last() {
                Some((i, ',' | ' ' | '\n')) => piece.split_at(i),
                _ => (piece, ""),
            };
            let Some((scheme, userinfo, host)) = nats_ws::proto::split_userinfo(url) else {
                return piece.to_owned();
            };
            changed = true;
            if found.is_none() {
                let decode = |text: &str| {
                    let bytes: Vec<u8> = percent_encoding::percent_decode_str(text).collect();
                    String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned())
                };
                found = match userinfo.split_once(':') {
                    Some(("", _)) => None,
                    Some((user, password)) => {
                        Some(UrlCredentials::UserPassword(decode(user), decode(password)))
                    }
                    None if userinfo.is_empty() => None,
                    None => Some(UrlCredentials::Token(decode(userinfo))),
                };
            }
            format!("{scheme}{host}{separator}")
        })
        .collect();
    changed.then(|| (urls.concat(), found))
}

#[cfg(test)]
mod tests {
    use super::{credentials_out_of_urls, Settings, UrlCredentials};

    fn saved(user: &str, password: &str, token: &str, remember: bool) -> Settings {
        Settings {
            servers: "ws://127.0.0.1:8080".into(),
            name: "via-app".into(),
            user: user.into(),
            password: password.into(),
            token: token.into(),
            remember,
        }
    }

    /// A tab never gives up on its server, and tries it at least every 5 s (+ jitter): a trial
    /// found every tab Offline for good after an outage of 155 s, the client's ten tries used up.
    #[test]
    fn a_tab_tries_its_server_for_as_long_as_it_takes_at_most_5_s_apart() {
        let policy = saved("", "", "", false).options().reconnect;
        assert_eq!(policy.max_attempts, None);
        for attempt in [0, 5, 50, u32::MAX] {
            assert!(policy.delay(attempt) <= std::time::Duration::from_secs(5));
        }
        assert_eq!(policy.delay(0), std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_new_tab_leaves_out_a_user_whose_password_another_tab_kept() {
        let (settings, left_out) = saved("admin", "", "", false).for_new_tab();
        assert_eq!(left_out.as_deref(), Some("admin"));
        assert!(settings == saved("", "", "", false));
        // With what it needs, or remembered as it is: used as saved.
        for kept in [
            saved("admin", "pw", "", false),
            saved("admin", "", "", true),
            saved("", "", "tok", false),
            saved("admin", "", "tok", false),
            saved("", "", "", false),
        ] {
            let (settings, left_out) = kept.clone().for_new_tab();
            assert_eq!(left_out, None);
            assert!(settings == kept);
        }
    }

    fn user(user: &str, password: &str) -> Option<UrlCredentials> {
        Some(UrlCredentials::UserPassword(
            user.to_owned(),
            password.to_owned(),
        ))
    }

    #[test]
    fn credentials_in_a_saved_url_move_out_of_it() {
        assert_eq!(credentials_out_of_urls("ws://127.0.0.1:8080"), None);
        assert_eq!(
            credentials_out_of_urls("ws://127.0.0.1:8080/path?q=a@b, wss://h:443#x@y"),
            None
        );
        assert_eq!(
            credentials_out_of_urls("ws://admin:s%40cret@127.0.0.1:8080/ws"),
            Some(("ws://127.0.0.1:8080/ws".to_owned(), user("admin", "s@cret")))
        );
        // Every url loses its credentials; the first url's are the ones kept.
        assert_eq!(
            credentials_out_of_urls("ws://a:1@h1:8080, ws://b:2@h2:8081,ws://h3:8082"),
            Some((
                "ws://h1:8080, ws://h2:8081,ws://h3:8082".to_owned(),
                user("a", "1")
            ))
        );
        // Separated by spaces or lines, as the settings take them too.
        assert_eq!(
            credentials_out_of_urls("ws://a:1@h1:8080 ws://a:1@h2:8081\nws://h3:8082"),
            Some((
                "ws://h1:8080 ws://h2:8081\nws://h3:8082".to_owned(),
                user("a", "1")
            ))
        );
        // A name without a password is a token (as nats.go reads it); no name is nothing to keep.
        assert_eq!(
            credentials_out_of_urls("bob@h:1"),
            Some((
                "h:1".to_owned(),
                Some(UrlCredentials::Token("bob".to_owned()))
            ))
        );
        assert_eq!(
            credentials_out_of_urls("ws://:pw@h:1"),
            Some(("ws://h:1".to_owned(), None))
        );
    }
}

/// Chat messages sent from this tab and not yet acknowledged by the stream. Kept in
/// sessionStorage so that a reload (or a crash of the tab's page) sends them again, with the same
/// message id, so that the stream stores each once.
pub mod outbox {
    use crate::model::ChatMessage;

    const KEY: &str = "via.outbox";

    fn load() -> Vec<ChatMessage> {
        super::session_storage()
            .and_then(|s| s.get_item(KEY).ok().flatten())
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default()
    }

    fn save(messages: &[ChatMessage]) {
        if let (Some(s), Ok(json)) = (super::session_storage(), serde_json::to_string(messages)) {
            let _ = s.set_item(KEY, &json);
        }
    }

    pub fn add(message: &ChatMessage) {
        let mut all = load();
        all.push(message.clone());
        save(&all);
    }

    pub fn remove(id: &str) {
        let mut all = load();
        all.retain(|m| m.id != id);
        save(&all);
    }

    /// Every message not yet stored, in the order they were sent.
    pub fn all() -> Vec<ChatMessage> {
        load()
    }
}

/// The counter's clicks not yet seen in the stored value, by the writer that numbered them (each
/// load of the app is a writer of its own), kept across a reload of the tab: the next load writes
/// them, under their writer, so that one already in is not counted again.
pub mod counter_clicks {
    use crate::model::CounterOp;

    const KEY: &str = "via.counter";

    pub type Unsettled = Vec<(String, Vec<(u64, CounterOp)>)>;

    pub fn load() -> Unsettled {
        super::session_storage()
            .and_then(|s| s.get_item(KEY).ok().flatten())
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default()
    }

    /// Keeps what is unsettled now (nothing: the key is removed).
    pub fn save(unsettled: &Unsettled) {
        let Some(s) = super::session_storage() else {
            return;
        };
        let _ = match unsettled.is_empty() {
            true => s.remove_item(KEY),
            false => match serde_json::to_string(unsettled) {
                Ok(json) => s.set_item(KEY, &json),
                Err(_) => Ok(()),
            },
        };
    }
}

/// An error's text for the page, a permission refusal explained for the user this tab's
/// connection signed in as (see [`crate::model::explain`]).
pub fn explain(error: impl std::fmt::Display) -> String {
    // Natively (the unit tests) there is no browser storage to read the user from.
    let user = if cfg!(target_arch = "wasm32") {
        // A token signs in whatever the user field says (`options`).
        let applied = Settings::applied();
        match applied.token.is_empty() {
            true => applied.user,
            false => "token's".to_owned(),
        }
    } else {
        String::new()
    };
    crate::model::explain(&error.to_string(), &user)
}
