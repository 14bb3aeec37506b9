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
        if !settings.remember {
            let kept_before = !settings.password.is_empty() || !settings.token.is_empty();
            let session = session_storage()
                .and_then(|s| s.get_item(SECRETS_KEY).ok().flatten())
                .and_then(|json| serde_json::from_str::<Secrets>(&json).ok());
            if let Some(secrets) = session {
                settings.password = secrets.password;
                settings.token = secrets.token;
            }
            // Saved by an earlier version, which kept secrets in localStorage: move them to the
            // session.
            if kept_before {
                settings.save();
            }
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

    pub fn options(&self) -> nats_ws::Options {
        let servers: Vec<String> = self
            .servers
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut options = nats_ws::Options::with_servers(servers);
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

/// An error's text for the page, a permission refusal explained for the user the settings sign
/// in as (see [`crate::model::explain`]).
pub fn explain(error: impl std::fmt::Display) -> String {
    // Natively (the unit tests) there is no browser storage to read the user from.
    let user = if cfg!(target_arch = "wasm32") {
        Settings::load().user
    } else {
        String::new()
    };
    crate::model::explain(&error.to_string(), &user)
}
