//! How the native programs sign in: each as its own user of the development server's account
//! `APP` (agent, worker, publisher, math, sensor, leaf), with only the permissions it needs
//! (`nats-accounts.conf`). `bash nats.sh start` generates the passwords once into
//! `data/credentials.env`, one line `NATS_<USER>_PASSWORD=…` each.
//!
//! A program looks its password up in the environment first (`NATS_<USER>_PASSWORD`, so a
//! supervisor or a test can hand it over without a file), then in the file named by
//! `VIA_CREDENTIALS`, else `data/credentials.env` in the working directory. Neither: the program
//! connects without credentials, which is what a server without accounts (the tests' own) expects.
//! Passwords are never printed and never put on a command line.

use std::path::PathBuf;

/// Where `nats.sh` writes the generated passwords, relative to the repository root.
pub const DEFAULT_FILE: &str = "data/credentials.env";

/// The environment variable that holds `user`'s password: `NATS_<USER>_PASSWORD`.
pub fn variable(user: &str) -> String {
    let upper: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("NATS_{upper}_PASSWORD")
}

/// The credentials file in use: `$VIA_CREDENTIALS`, else `data/credentials.env`.
pub fn file() -> PathBuf {
    std::env::var_os("VIA_CREDENTIALS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FILE))
}

/// `user`'s password, if the environment or the credentials file has one. A file that exists
/// but cannot be read is an error (a silent anonymous connection would be refused later, with a
/// less helpful message).
pub fn password(user: &str) -> Result<Option<String>, String> {
    let name = variable(user);
    if let Some(value) = std::env::var(&name).ok().filter(|v| !v.is_empty()) {
        return Ok(Some(value));
    }
    let path = file();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(lookup(&text, &name)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// `options` signed in as `user` when its password is known (see [`password`]).
///
/// A server url that carries credentials (`nats://user:password@host`) is refused, without
/// repeating it: the programs print their url, and a password would land in their logs.
pub fn sign_in(options: nats_ws::Options, user: &str) -> Result<nats_ws::Options, String> {
    if options.servers.iter().any(|url| has_userinfo(url)) {
        return Err(format!(
            "the NATS url carries credentials (user:password@…): give it without them; {user}'s password is read from {} or ${}",
            file().display(),
            variable(user)
        ));
    }
    Ok(match password(user)? {
        Some(password) => options.user_password(user, password),
        None => options,
    })
}

/// Whether `url` has a user-info part (`scheme://…@host`).
fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// The value of `name` in a `KEY=value` file (`#` comments, blank lines, optional quotes and
/// `export ` are tolerated, as a shell would read it).
fn lookup(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=')?;
        if key.trim() != name {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_credentials_is_refused_without_repeating_them() {
        for url in [
            "nats://agent:s3cret@127.0.0.1:4222",
            "ws://tok3n@localhost:8080/",
        ] {
            let e = sign_in(nats_ws::Options::new(url), "agent").unwrap_err();
            assert!(!e.contains("s3cret") && !e.contains("tok3n"), "{e}");
            assert!(e.contains("carries credentials"), "{e}");
        }
        for url in [
            "nats://127.0.0.1:4222",
            "ws://host:8080/path@x",
            "127.0.0.1:4222",
        ] {
            assert!(!has_userinfo(url), "{url}");
        }
    }

    #[test]
    fn variable_names_follow_the_user() {
        assert_eq!(variable("agent"), "NATS_AGENT_PASSWORD");
        assert_eq!(variable("sys"), "NATS_SYS_PASSWORD");
        assert_eq!(variable("via-math"), "NATS_VIA_MATH_PASSWORD");
    }

    #[test]
    fn the_file_is_read_as_a_shell_would() {
        let text = "# generated by nats.sh\nNATS_ADMIN_PASSWORD=a1\n\nexport NATS_AGENT_PASSWORD=\"b2\"\n  NATS_MATH_PASSWORD = 'c3'  \nNATS_EMPTY_PASSWORD=\n";
        assert_eq!(lookup(text, "NATS_ADMIN_PASSWORD").as_deref(), Some("a1"));
        assert_eq!(lookup(text, "NATS_AGENT_PASSWORD").as_deref(), Some("b2"));
        assert_eq!(lookup(text, "NATS_MATH_PASSWORD").as_deref(), Some("c3"));
        assert_eq!(lookup(text, "NATS_EMPTY_PASSWORD"), None);
        assert_eq!(lookup(text, "NATS_SENSOR_PASSWORD"), None);
        // A longer key with the same start is another key.
        assert_eq!(
            lookup("NATS_ADMIN_PASSWORD_OLD=x\n", "NATS_ADMIN_PASSWORD"),
            None
        );
    }
}
