//! The one HTTP call the agent makes: a GET of the hub's monitoring endpoint (plain `http://` on
//! loopback), hand-rolled over a tokio socket rather than pulling in an HTTP client.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest answer read (a /leafz of a few leaves is a few KiB).
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// GETs `url` (`http://host:port/path`) with HTTP/1.0 and returns the body of a 200 answer.
pub async fn get(url: &str, timeout: Duration) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let mut answer = Vec::new();
        stream
            .take(MAX_BODY)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        parse_response(&answer).map_err(|e| format!("{url}: {e}"))
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| format!("{url}: no answer within {timeout:?}"))?
}

fn parse_response(answer: &[u8]) -> Result<String, String> {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .ok_or("no status line")?;
    if status != "200" {
        return Err(format!("HTTP {status}"));
    }
    if head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    }) {
        return Err("chunked answer to an HTTP/1.0 request".into());
    }
    Ok(String::from_utf8_lossy(&answer[split + 4..]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        assert_eq!(
            parse_response(b"HTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\n{\"a\":1}").unwrap(),
            "{\"a\":1}"
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap_err(),
            "HTTP 404"
        );
        assert!(parse_response(b"garbage").is_err());
    }

    #[tokio::test]
    async fn get_from_a_local_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET /leafz HTTP/1.0\r\n"));
            s.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello").await.unwrap();
        });
        let body = get(
            &format!("http://127.0.0.1:{port}/leafz"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(body, "hello");
        assert!(get("https://x/", Duration::from_secs(1)).await.is_err());
    }
}
